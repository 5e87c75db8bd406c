// Package remote is Gantry's OCI distribution client: it resolves an image
// reference through the mirrors of a hosts.toml-like configuration and then
// the origin, picks a platform from an image index, and fetches the index,
// manifest, config and layers into the content store (layers in parallel with
// a bounded pool, Range resume of interrupted downloads, bounded retries with
// backoff). Every blob is verified by the content store before it becomes
// visible. Authentication (Bearer tokens from the registry's token server, or
// basic auth) answers the registry's WWW-Authenticate challenges; requests,
// schemes and TLS are decided here.
package remote
