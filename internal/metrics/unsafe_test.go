package metrics

import "unsafe"

// unsafeString is a string sharing b's bytes, as fiber's c.Method() is a
// view of fasthttp's buffer.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }
