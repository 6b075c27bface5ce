/*
 * The three socket operations Node.js has no API for, and nothing else:
 *   socketInNetns(netnsFd, transparent, mark) -> fd   a TCP socket created inside a network namespace
 *   bindSocket(fd, ip, port)                          bind(2) an IPv4 address, even a foreign one
 *   originalDst(fd) -> "ip:port"                      SO_ORIGINAL_DST of a REDIRECTed connection
 * A socket belongs to the namespace it was created in, so setns(2) is held only around socket(2),
 * on the calling thread, and always undone.
 *
 * And the Unix SOCK_SEQPACKET sockets of ZDS (the CNI agent hands ztunnel each pod's netns as a file
 * descriptor with SCM_RIGHTS), which Node.js cannot create either:
 *   seqpacketListen(path) / seqpacketConnect(path) -> fd, seqpacketAccept(fd) -> fd | -1
 *   seqpacketSend(fd, bytes, passFd)        one message, with at most one fd beside it
 *   seqpacketRecv(fd) -> {data, fds, truncated} | null (would block); data null at end of stream
 *   watchReadable(fd, cb) -> handle, unwatch(handle)   uv_poll on Node's own event loop
 *   closeFd(fd), isNetns(fd)
 * Every fd is non-blocking and close-on-exec; received fds are the caller's to close.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uv.h>

static napi_value throw_errno(napi_env env, const char *op, int err) {
  char code[32];
  char msg[160];
  snprintf(code, sizeof code, "E%d", err);
  snprintf(msg, sizeof msg, "%s: %s", op, strerror(err));
  napi_throw_error(env, code, msg);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value socket_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ns_fd, mark;
  bool transparent = false;
  if (argc < 3 || arg_int(env, argv[0], &ns_fd) || napi_get_value_bool(env, argv[1], &transparent) != napi_ok ||
      arg_int(env, argv[2], &mark)) {
    napi_throw_type_error(env, NULL, "socketInNetns(netnsFd: number, transparent: boolean, mark: number)");
    return NULL;
  }
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return throw_errno(env, "open /proc/thread-self/ns/net", errno);
  if (setns(ns_fd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(self);
    return throw_errno(env, "setns", err);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sock_err = errno;
  if (setns(self, CLONE_NEWNET) != 0) {
    /* The thread would stay in the pod's namespace: nothing after this could be trusted. */
    perror("netns-sockets: cannot return to the original network namespace");
    abort();
  }
  close(self);
  if (fd < 0) return throw_errno(env, "socket", sock_err);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (transparent && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) ||
      (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0)) {
    int err = errno;
    close(fd);
    return throw_errno(env, "setsockopt", err);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value bind_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, port;
  char ip[64];
  size_t len;
  if (argc < 3 || arg_int(env, argv[0], &fd) ||
      napi_get_value_string_utf8(env, argv[1], ip, sizeof ip, &len) != napi_ok || arg_int(env, argv[2], &port)) {
    napi_throw_type_error(env, NULL, "bindSocket(fd: number, ip: string, port: number)");
    return NULL;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "bindSocket: not an IPv4 address");
    return NULL;
  }
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return throw_errno(env, "bind", errno);
  return NULL;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "originalDst(fd: number)");
    return NULL;
  }
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &addr, &len) != 0) return throw_errno(env, "SO_ORIGINAL_DST", errno);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  char out[INET_ADDRSTRLEN + 8];
  snprintf(out, sizeof out, "%s:%u", ip, (unsigned)ntohs(addr.sin_port));
  napi_value result;
  napi_create_string_utf8(env, out, NAPI_AUTO_LENGTH, &result);
  return result;
}

static int unix_addr(napi_env env, napi_value v, struct sockaddr_un *addr) {
  size_t len;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, addr->sun_path, sizeof addr->sun_path, &len) != napi_ok ||
      len == 0 || len >= sizeof addr->sun_path - 1) {
    napi_throw_type_error(env, NULL, "a Unix socket path (at most 106 bytes)");
    return -1;
  }
  return 0;
}

static napi_value int_value(napi_env env, int v) {
  napi_value result;
  napi_create_int32(env, v, &result);
  return result;
}

static napi_value seqpacket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un addr;
  if (argc < 1 || unix_addr(env, argv[0], &addr)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind/listen", err);
  }
  return int_value(env, fd);
}

static napi_value seqpacket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un addr;
  if (argc < 1 || unix_addr(env, argv[0], &addr)) return NULL;
  /* A Unix connect completes at once or fails (a full backlog is EAGAIN, retried by the caller). */
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  return int_value(env, fd);
}

static napi_value seqpacket_accept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "seqpacketAccept(fd: number)");
    return NULL;
  }
  int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (conn < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
      return int_value(env, -1);
    return throw_errno(env, "accept", errno);
  }
  return int_value(env, conn);
}

static napi_value seqpacket_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, pass_fd;
  void *data;
  size_t len;
  bool is_typed = false;
  if (argc < 3 || arg_int(env, argv[0], &fd) || napi_is_typedarray(env, argv[1], &is_typed) != napi_ok ||
      !is_typed || arg_int(env, argv[2], &pass_fd)) {
    napi_throw_type_error(env, NULL, "seqpacketSend(fd: number, data: Uint8Array, passFd: number)");
    return NULL;
  }
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &offset);
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  if (pass_fd >= 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  return NULL;
}

#define RECV_MAX_FDS 8
static napi_value seqpacket_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "seqpacketRecv(fd: number)");
    return NULL;
  }
  char buf[65536];
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
  union {
    char buf[CMSG_SPACE(RECV_MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value nothing;
      napi_get_null(env, &nothing);
      return nothing;
    }
    return throw_errno(env, "recvmsg", errno);
  }
  napi_value result, fds, data, truncated;
  napi_create_object(env, &result);
  napi_create_array(env, &fds);
  uint32_t count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      napi_set_element(env, fds, count++, int_value(env, got));
    }
  }
  /* A zero-length read with no descriptors is the end of the stream. */
  if (n == 0 && count == 0) {
    napi_get_null(env, &data);
  } else {
    void *out;
    napi_create_buffer_copy(env, (size_t)n, buf, &out, &data);
  }
  napi_get_boolean(env, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0, &truncated);
  napi_set_named_property(env, result, "data", data);
  napi_set_named_property(env, result, "fds", fds);
  napi_set_named_property(env, result, "truncated", truncated);
  return result;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
} watch_t;

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  watch_t *w = handle->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, arg;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv);
  napi_create_int32(env, status, &arg);
  /* make_callback runs the microtasks (promise reactions) the callback queues, as Node does. */
  if (napi_make_callback(env, w->context, recv, cb, 1, &arg, NULL) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static napi_value watch_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || arg_int(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "watchReadable(fd: number, callback: (status: number) => void)");
    return NULL;
  }
  struct uv_loop_s *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "calloc", ENOMEM);
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->env = env;
  w->poll.data = w;
  napi_value name;
  napi_create_string_utf8(env, "ZdsSocket", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->context);
  napi_create_reference(env, argv[1], 1, &w->callback);
  uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  napi_value handle;
  napi_create_external(env, w, NULL, NULL, &handle);
  return handle;
}

static void free_watch(uv_handle_t *handle) {
  watch_t *w = handle->data;
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
  free(w);
}

static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "unwatch(handle)");
    return NULL;
  }
  watch_t *w = p;
  /* Called once per handle by the TS module; the handle is freed once libuv lets go of it. */
  uv_poll_stop(&w->poll);
  /* The callback and its async context go in free_watch: unwatch may run inside that callback. */
  uv_close((uv_handle_t *)&w->poll, free_watch);
  return NULL;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "closeFd(fd: number)");
    return NULL;
  }
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value is_netns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "isNetns(fd: number)");
    return NULL;
  }
  bool yes;
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type >= 0) {
    yes = type == CLONE_NEWNET;
  } else {
    /* Kernels before 4.11 lack NS_GET_NSTYPE: a file of nsfs is then the best evidence. */
    struct statfs st;
    yes = errno == ENOTTY && fstatfs(fd, &st) == 0 && st.f_type == NSFS_MAGIC;
  }
  napi_value result;
  napi_get_boolean(env, yes, &result);
  return result;
}

/*
 * Returns the C heap's free pages to the kernel (glibc's malloc_trim): buffers of busy tunnels are
 * malloc'd and freed by the thousand, and glibc otherwise keeps the freed pages in RSS. True when
 * memory was released; always false without glibc.
 */
static napi_value malloc_trim_js(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketInNetns", NULL, socket_in_netns, NULL, NULL, NULL, napi_default, NULL},
      {"bindSocket", NULL, bind_socket, NULL, NULL, NULL, napi_default, NULL},
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketListen", NULL, seqpacket_listen, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketConnect", NULL, seqpacket_connect, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketAccept", NULL, seqpacket_accept, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketSend", NULL, seqpacket_send, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketRecv", NULL, seqpacket_recv, NULL, NULL, NULL, napi_default, NULL},
      {"watchReadable", NULL, watch_readable, NULL, NULL, NULL, napi_default, NULL},
      {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
      {"isNetns", NULL, is_netns, NULL, NULL, NULL, napi_default, NULL},
      {"mallocTrim", NULL, malloc_trim_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
