package handlers

import (
	"context"
	"net"
)

type connKey struct{}

// ConnContext is the http.Server ConnContext hook that lets the token
// handler reach the connection a PUT arrived on, to set its hop limit.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connFrom(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}
