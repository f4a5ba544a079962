// The bytes of JSON's structure, for the scanners that read a body without parsing it (scan.ts
// for the request path's fields, canonical.ts for the cache key).
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;
export const COMMA = 0x2c;
export const COLON = 0x3a;
