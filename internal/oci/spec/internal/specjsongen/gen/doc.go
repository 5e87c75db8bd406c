// Package gen generates the reflection-free JSON decoder and encoder of
// package spec (specjson_gen.go): for each, one function per struct type
// reachable from specs.Spec (and per slice, map or pointer type that is
// itself an element), calling the scanner and generic helpers of
// internal/oci/spec/fastjson.go (the decoder, functions fj*) and
// fastjson_enc.go (the encoder, functions fe*). It exists because the first
// json.Unmarshal into specs.Spec, and the first json.Marshal of one, each
// cost about 1-1.5 ms of a container start (encoding/json building its
// reflection caches), and each gantry-oci command is a fresh process.
//
// The generated code must give exactly what encoding/json gives, or give
// up. So the generator supports only what it can handle with certainty and
// refuses the rest with an error naming the field: interface fields (unless
// listed in Config.Fallback, when the decoder gives up as soon as the key is
// present and the encoder as soon as the field is not nil), embedded
// structs other than exported, untagged, non-pointer ones
// (specs.LinuxWeightDevice embeds specs.LinuxBlockIODevice so; their fields
// are handled as encoding/json promotes them), types with MarshalJSON,
// UnmarshalJSON, MarshalText or UnmarshalText, the `,string` option and any
// other unknown one, `omitzero` on a struct or on a type with an IsZero
// method, floats, fixed-size arrays, []byte, non-string map keys, two fields
// with one JSON name, JSON names with characters other than ASCII letters,
// digits, '_', '-' and '.'. A runtime-spec upgrade that brings any of these
// makes `go generate` (and TestSpecJSONGenUpToDate) fail instead of
// decoding or encoding wrong.
package gen
