// Package events is gantryd's event bus: every published event gets the
// next sequence number, is kept in a bounded ring (persisted in a small
// bbolt file with the last sequence, so numbers keep growing across
// restarts and a client that reconnects can resume from the last one it
// saw) and is delivered to the subscribers whose filters match it.
package events
