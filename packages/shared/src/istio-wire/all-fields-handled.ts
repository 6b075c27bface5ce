/**
 * Compile-time check for decoders: pass the rest of a decoded message after destructuring every
 * field the decoder reads or deliberately ignores. A field added to the wire contract stays in the
 * rest and fails to compile here until the decoder names it.
 */
export function allFieldsHandled(_rest: Record<string, never>): void {}
