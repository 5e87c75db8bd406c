// Package bench builds the synthetic image of the pull benchmark
// (scripts/bench-pull.sh): about 400 MB in 8 layers, some holding thousands
// of small text-like files, others a few large incompressible ones, gzip
// layers and one zstd layer. The content is generated from fixed seeds, so
// the same scale always gives the same digests. The commands under cmd/
// push it to a registry (pushimage) and measure this machine's single-core
// decompression throughput (decompress).
package bench
