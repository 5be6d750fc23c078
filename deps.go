//go:build tools

// deps.go pins the chosen dependencies in go.mod until the packages import them.

package main

import (
	_ "github.com/VictoriaMetrics/metrics"
	_ "github.com/coder/websocket"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/labstack/echo/v4"
	_ "github.com/labstack/echo/v4/middleware"
	_ "github.com/mattn/go-sqlite3"
	_ "go.uber.org/goleak"
	_ "golang.org/x/time/rate"
)
