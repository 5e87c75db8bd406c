// Package gen generates the reflection-free JSON decoder of package spec
// (specjson_gen.go): one function per struct type reachable from
// specs.Spec (and per slice, map or pointer type that is itself an element),
// calling the scanner and generic helpers of internal/oci/spec/fastjson.go. It exists because the first json.Unmarshal
// into specs.Spec costs about 1 ms of every container start (encoding/json
// building its reflection caches) and each `gantry-oci create` is a fresh
// process.
//
// The generated decoder must give exactly what encoding/json gives, or give
// up. So the generator supports only what it can decode with certainty and
// refuses the rest with an error naming the field: interface fields (unless
// listed in Config.Fallback, when the decoder gives up as soon as the key is
// present), embedded structs other than exported, untagged, non-pointer ones
// (specs.LinuxWeightDevice embeds specs.LinuxBlockIODevice so; their fields
// are decoded as encoding/json promotes them), types with UnmarshalJSON or
// UnmarshalText, the `,string` option and any other unknown one, floats,
// fixed-size arrays, []byte, non-string map keys, two fields with one JSON
// name, JSON names with characters other than letters, digits, '_', '-'
// and '.'. A runtime-spec upgrade that brings any of these makes `go
// generate` (and TestSpecJSONGenUpToDate) fail instead of decoding wrong.
package gen
