package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// schemaVersion is the version of the layout this code reads and writes.
const schemaVersion = 1

var (
	bucketV1         = []byte("v1")
	keyVersion       = []byte("version")
	bucketImages     = []byte("images")
	bucketContainers = []byte("containers")
	// bucketLeases sits beside the namespaces; the leading underscore
	// cannot start a namespace name.
	bucketLeases = []byte("_leases")
)

// migration brings a database from version to-1 to version to.
type migration struct {
	to   int
	name string
	fn   func(tx *bolt.Tx) error
}

// migrations are applied in order to a database older than schemaVersion.
// Version 1 is the first schema, so there is nothing to migrate yet; a
// version 2 appends {to: 2, name: "...", fn: ...} here.
var migrations []migration

// DB is the metadata store. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	// gc is held for writing while GarbageCollect marks and sweeps, and for
	// reading by every write that adds a reference, so a reference added
	// during a collection is never missed by its mark.
	gc sync.RWMutex
}

// Open opens (creating if needed) the metadata database at path and brings
// its schema up to date. A file held by another process is an
// ErrUnavailable error; a file written by a newer Gantry (schema version
// above ours) is an ErrFailedPrecondition error.
func Open(path string) (*DB, error) {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open metadata %q: locked by another process: %w", path, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("open metadata %q: %w", path, err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error { return migrate(tx, migrations) }); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open metadata %q: %w", path, err)
	}
	return &DB{bolt: bdb}, nil
}

// migrate stamps a new database with schemaVersion or runs the migrations
// an older one needs.
func migrate(tx *bolt.Tx, migs []migration) error {
	v1, err := tx.CreateBucketIfNotExists(bucketV1)
	if err != nil {
		return fmt.Errorf("create bucket v1: %w", err)
	}
	target := schemaVersion
	for _, m := range migs {
		target = max(target, m.to)
	}
	raw := v1.Get(keyVersion)
	if raw == nil {
		return v1.Put(keyVersion, []byte(strconv.Itoa(target)))
	}
	cur, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("schema version %q: %w", raw, errdefs.ErrFailedPrecondition)
	}
	if cur > target {
		return fmt.Errorf("schema version %d is newer than %d, which this gantry knows: %w", cur, target, errdefs.ErrFailedPrecondition)
	}
	for _, m := range migs {
		if m.to <= cur {
			continue
		}
		if m.to != cur+1 {
			return fmt.Errorf("migration %q to version %d: no migration from version %d: %w", m.name, m.to, cur, errdefs.ErrFailedPrecondition)
		}
		if err := m.fn(tx); err != nil {
			return fmt.Errorf("migration %q to version %d: %w", m.name, m.to, err)
		}
		cur = m.to
	}
	return v1.Put(keyVersion, []byte(strconv.Itoa(cur)))
}

// SchemaVersion returns the schema version stored in the database.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		v, err = strconv.Atoi(string(tx.Bucket(bucketV1).Get(keyVersion)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Close closes the database.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close metadata: %w", err)
	}
	return nil
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,74}[a-z0-9])?$`)

// ValidateNamespace checks a namespace name: lowercase letters, digits,
// '.', '_' and '-', starting and ending with a letter or digit, at most 76
// characters.
func ValidateNamespace(ns string) error {
	if !namespaceRE.MatchString(ns) {
		return fmt.Errorf("namespace %q: must match %s: %w", ns, namespaceRE, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ListNamespaces returns the namespaces that hold at least one bucket, sorted.
func (db *DB) ListNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).ForEachBucket(func(k []byte) error {
			if ValidateNamespace(string(k)) == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// putRecord stores v as JSON at v1/<ns>/<kind>/<key>.
func (db *DB) putRecord(ctx context.Context, ns string, kind []byte, key string, v any, update func(old []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	db.gc.RLock()
	defer db.gc.RUnlock()
	return db.bolt.Update(func(tx *bolt.Tx) error {
		nsb, err := tx.Bucket(bucketV1).CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return err
		}
		b, err := nsb.CreateBucketIfNotExists(kind)
		if err != nil {
			return err
		}
		if update != nil {
			if err := update(b.Get([]byte(key))); err != nil {
				return err
			}
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), data)
	})
}

// getRecord decodes v1/<ns>/<kind>/<key> into v; found is false if absent.
func (db *DB) getRecord(ctx context.Context, ns string, kind []byte, key string, v any) (found bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := ValidateNamespace(ns); err != nil {
		return false, err
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		b := kindBucket(tx, ns, kind)
		if b == nil {
			return nil
		}
		data := b.Get([]byte(key))
		if data == nil {
			return nil
		}
		found = true
		return json.Unmarshal(data, v)
	})
	return found, err
}

// listRecords calls fn with every value of v1/<ns>/<kind>, in key order.
func (db *DB) listRecords(ctx context.Context, ns string, kind []byte, fn func(data []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := kindBucket(tx, ns, kind)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// deleteRecord removes v1/<ns>/<kind>/<key>; found is false if absent.
func (db *DB) deleteRecord(ctx context.Context, ns string, kind []byte, key string) (found bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := ValidateNamespace(ns); err != nil {
		return false, err
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := kindBucket(tx, ns, kind)
		if b == nil || b.Get([]byte(key)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(key))
	})
	return found, err
}

func kindBucket(tx *bolt.Tx, ns string, kind []byte) *bolt.Bucket {
	nsb := tx.Bucket(bucketV1).Bucket([]byte(ns))
	if nsb == nil {
		return nil
	}
	return nsb.Bucket(kind)
}
