package auth

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MessageAuth is the y-protocols message type of auth messages.
const MessageAuth = 2

// The first field of an auth message. y-protocols defines one message, sent
// by the server: permission denied (0) with a reason string, which the stock
// provider logs. Quire reads the same layout from a client as "here is my
// token" (the layout Hocuspocus uses for its token message), so a client
// never needs to decode anything new and the direction tells them apart.
const (
	authPermissionDenied = 0 // server to client: varString reason
	authToken            = 0 // client to server: varString token
)

// AppendPermissionDenied appends a whole y-protocols auth message, "permission
// denied" with reason, to dst: [2, 0, varString(reason)]. The server sends it
// to a read-only peer whose update it refused; the stock provider logs
// "Permission denied to access <url>. <reason>".
func AppendPermissionDenied(dst []byte, reason string) []byte {
	dst = appendVarUint(dst, MessageAuth)
	dst = appendVarUint(dst, authPermissionDenied)
	return appendVarString(dst, reason)
}

// AppendTokenMessage appends a whole auth message carrying token to dst:
// [2, 0, varString(token)]. It is what a client that connected with
// ?auth=message sends first.
func AppendTokenMessage(dst []byte, token string) []byte {
	dst = appendVarUint(dst, MessageAuth)
	dst = appendVarUint(dst, authToken)
	return appendVarString(dst, token)
}

// ParseTokenMessage reads the token from the payload of a client's auth
// message, i.e. the bytes after the message type 2. The payload must be
// exactly [0, varString(token)] with a token of at most MaxTokenBytes bytes
// of UTF-8; anything else is an *Error of KindMalformed. It never panics and
// allocates only the token, once its bytes are known to be there.
func ParseTokenMessage(payload []byte) (string, error) {
	kind, n, err := readVarUint(payload)
	if err != nil {
		return "", malformedMessage(err)
	}
	if kind != authToken {
		return "", malformedMessage(fmt.Errorf("unknown auth message %d", kind))
	}
	payload = payload[n:]
	size, n, err := readVarUint(payload)
	if err != nil {
		return "", malformedMessage(fmt.Errorf("token length: %w", err))
	}
	payload = payload[n:]
	if size > MaxTokenBytes {
		return "", malformedMessage(fmt.Errorf("token of %d bytes, the limit is %d", size, MaxTokenBytes))
	}
	if uint64(len(payload)) < size {
		return "", malformedMessage(fmt.Errorf("token of %d bytes, message has %d", size, len(payload)))
	}
	if uint64(len(payload)) > size {
		return "", malformedMessage(fmt.Errorf("%d bytes after the token", uint64(len(payload))-size))
	}
	if !utf8.Valid(payload) {
		return "", malformedMessage(errors.New("token is not UTF-8"))
	}
	if size == 0 {
		return "", ErrNoToken
	}
	return string(payload), nil
}

func malformedMessage(err error) error {
	return &Error{Kind: KindMalformed, Err: fmt.Errorf("auth message: %w", err)}
}

// readVarUint reads a lib0 varUint: 7 bits per byte, least significant
// first, high bit set on every byte but the last. Like lib0 it refuses
// values past 2^53 (JavaScript's safe integers), so at most 8 bytes.
func readVarUint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for n < len(b) {
		c := b[n]
		n++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if v > 1<<53 {
				return 0, 0, errors.New("varUint out of range")
			}
			return v, n, nil
		}
		shift += 7
		if shift >= 56 {
			return 0, 0, errors.New("varUint out of range")
		}
	}
	return 0, 0, errors.New("truncated varUint")
}

func appendVarUint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func appendVarString(dst []byte, s string) []byte {
	dst = appendVarUint(dst, uint64(len(s)))
	return append(dst, s...)
}
