//go:build !linux

package server

import (
	"errors"
	"syscall"

	"github.com/quirehq/quire/doc"
)

// Elsewhere every connection has a reader goroutine (wsConn.readLoop).

type poller struct{}

type pollLoop struct{ turn doc.Turn }

var errNoPoller = errors.New("poller: only on Linux")

func newPoller(int) (*poller, error) { return nil, errNoPoller }

func defaultPollLoops() int { return 0 }

func (p *poller) add(*wsConn, syscall.RawConn) error { return errNoPoller }

func (l *pollLoop) remove(*wsConn, syscall.RawConn) {}

func (p *poller) stop() {}

type sockReader struct{}

func readSocket(syscall.RawConn, *sockReader) ([]byte, error) { return nil, errNoPoller }

func shutdownSocket(syscall.RawConn) {}

func shutdownWrite(syscall.RawConn) {}
