// Package metadata records every reference Gantry keeps in one bbolt file,
// <root>/metadata.db: images (name -> target descriptor, plus the blobs and
// snapshot chain IDs they need), containers (id -> image, snapshot key,
// runtime, spec) and leases (the blobs and snapshots of a pull or unpack in
// progress). Records are JSON values in buckets laid out as
// v1/<namespace>/{images,containers}/<name> and v1/_leases/<id>; the schema
// version lives under v1/version and Open runs the migrations that bring an
// older file up to date. Garbage collection is one mark-and-sweep over these
// references: whatever no image, container or lease reaches is removed from
// the content store and the snapshotter.
package metadata
