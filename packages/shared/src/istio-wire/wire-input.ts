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

/** Each field of W must be a field of T, in a form T's input accepts. */
type FieldsOf<T, W> = { [K in keyof W]: K extends keyof T ? NonNullable<Input<T[K]>> : never };

/**
 * What an encoder that always writes the fields of W produces: Input<T> with those fields
 * required, each in W's (narrower) form. A field W names that T lacks fails to compile.
 */
export type Written<T, W extends FieldsOf<T, W>> = Omit<Input<T>, keyof W> & W;

/** The fields K of Input<T>, required and not null: a part of Written's W. */
export type Always<T, K extends keyof T> = { -readonly [P in K]-?: NonNullable<Input<T[P]>> };

/** Written<T, ...> with the fields K required in their plain input form. */
export type WrittenFields<T, K extends keyof T> = Omit<Input<T>, K> & Always<T, K>;
