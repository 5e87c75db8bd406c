// Package identity switches the container process to the runtime-spec
// process.user: supplementary groups, gid, uid and umask. The uid and gid
// changes apply to every thread of the process, and the permitted
// capabilities survive the uid change so that package capability can set the
// final sets afterwards.
package identity
