/**
 * What an encoder may write for a message whose decoded shape is T: protobufjs's "properties"
 * form. Every field may be left out (proto3 sends nothing for a default), arrays are plain arrays,
 * and message fields may be null. Field names and value types are still T's, so a misspelt or
 * removed field fails to compile, as does a value of the wrong type.
 */
export type Input<T> = T extends Uint8Array
  ? Uint8Array
  : T extends ReadonlyArray<infer E>
    ? Array<Input<E>>
    : T extends object
      ? { -readonly [K in keyof T]?: Input<T[K]> }
      : T;
