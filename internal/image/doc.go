// Package image holds the user-facing image operations over the metadata
// database, the content store and a snapshotter: pull (remote.Pull with the
// unpack running beside it, each layer as soon as its blob is verified in
// the store, then the image record, all under a lease so a concurrent garbage
// collection keeps what the pull has fetched, and a collection of the
// leftovers when it fails), tag, list, inspect, remove (then collect),
// import and export of OCI image layouts and docker-save tarballs, and exact
// disk usage per image, layer and snapshot.
package image
