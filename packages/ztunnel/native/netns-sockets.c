/*
 * The three socket operations Node.js has no API for, and nothing else:
 *   socketInNetns(netnsFd, transparent, mark) -> fd   a TCP socket created inside a network namespace
 *   bindSocket(fd, ip, port)                          bind(2) an IPv4 address, even a foreign one
 *   originalDst(fd) -> "ip:port"                      SO_ORIGINAL_DST of a REDIRECTed connection
 * A socket belongs to the namespace it was created in, so setns(2) is held only around socket(2),
 * on the calling thread, and always undone.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketInNetns", NULL, socket_in_netns, NULL, NULL, NULL, napi_default, NULL},
      {"bindSocket", NULL, bind_socket, NULL, NULL, NULL, napi_default, NULL},
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
