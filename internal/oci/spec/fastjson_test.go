package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/spec/internal/specjsongen/gen"
	"github.com/gantry-project/gantry/test/bundle"
)

// fastCase is a config and whether decodeFast must decode it (true) or
// must give up on it (false).
type fastCase struct {
	name   string
	config string
	fast   bool
}

func marshalCase(tb testing.TB, name string, s *specs.Spec, indent bool) fastCase {
	tb.Helper()
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(s, "", "\t")
	} else {
		b, err = json.Marshal(s)
	}
	if err != nil {
		tb.Fatalf("marshal %s: %v", name, err)
	}
	return fastCase{name: name, config: string(b), fast: true}
}

// richConfig sets most fields a Linux config can have, with escapes,
// non-ASCII text, embedded structs (blockIO devices), maps and limits.
const richConfig = `{
	"ociVersion": "1.3.0",
	"process": {
		"terminal": true,
		"consoleSize": {"height": 24, "width": 80},
		"user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 10, 4294967295], "username": "me"},
		"args": ["/bin/sh", "-c", "echo \"hi\" \\ \u00e9 \ud83d\ude00 \/ \b\f\n\r\t", "h\u00e9llo 😀 \ufffd �"],
		"env": ["PATH=/usr/bin", "EMPTY=", "NUL=\u0000"],
		"cwd": "/",
		"capabilities": {"bounding": ["CAP_KILL"], "effective": [], "inheritable": null, "permitted": ["CAP_KILL", "CAP_CHOWN"], "ambient": []},
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 0}],
		"noNewPrivileges": false,
		"apparmorProfile": "unconfined",
		"oomScoreAdj": -1000,
		"scheduler": {"policy": "SCHED_DEADLINE", "nice": -20, "priority": 0, "flags": ["SCHED_FLAG_RECLAIM"], "runtime": 1, "deadline": 2, "period": 3},
		"selinuxLabel": "system_u:system_r:container_t:s0",
		"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
		"execCPUAffinity": {"initial": "0", "final": "0-1"}
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "h",
	"domainname": "example.org",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"],
		 "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "gidMappings": []}
	],
	"hooks": {
		"prestart": [{"path": "/bin/true"}],
		"createRuntime": [{"path": "/bin/hook", "args": ["hook", "a"], "env": ["A=1"], "timeout": 5}],
		"createContainer": [], "startContainer": null, "poststart": [{"path": "/x", "timeout": -1}], "poststop": [{"path": "/y"}]
	},
	"annotations": {"org.example/key": "value", "empty": "", "\u00e9": "\"quoted\""},
	"linux": {
		"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
		"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
		"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"},
		"resources": {
			"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": -1, "access": "rw"}],
			"memory": {"limit": 9223372036854775807, "reservation": -1, "swap": 0, "kernel": -9223372036854775808, "kernelTCP": 1, "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false, "checkBeforeUpdate": true},
			"cpu": {"shares": 1024, "quota": -1, "burst": 0, "period": 100000, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1", "mems": "0", "idle": 1},
			"pids": {"limit": 100},
			"blockIO": {
				"weight": 65535, "leafWeight": 10,
				"weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
				"throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 1048576}],
				"throttleWriteBpsDevice": [], "throttleReadIOPSDevice": null,
				"throttleWriteIOPSDevice": [{"rate": 1}]
			},
			"hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
			"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
			"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {}},
			"unified": {"memory.high": "max", "io.weight": "default 100"}
		},
		"cgroupsPath": "/gantry/c1",
		"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "time"}],
		"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
		"netDevices": {"eth1": {"name": "ctr1"}, "eth2": {}},
		"seccomp": {
			"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
			"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
			"flags": ["SECCOMP_FILTER_FLAG_LOG"],
			"listenerPath": "/run/seccomp.sock", "listenerMetadata": "meta",
			"syscalls": [
				{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
				{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
				{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]}
			]
		},
		"rootfsPropagation": "rslave",
		"maskedPaths": ["/proc/kcore"],
		"readonlyPaths": ["/proc/sys"],
		"mountLabel": "system_u:object_r:container_file_t:s0",
		"intelRdt": {"closID": "c1", "schemata": ["L3:0=ff"], "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50", "enableMonitoring": true},
		"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
		"personality": {"domain": "LINUX32", "flags": []},
		"timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 999999999}, "boottime": {}}
	}
}`

// otherPlatforms sets the sections of the other platforms.
const otherPlatforms = `{"ociVersion":"1.3.0",
	"solaris": {"milestone": "m", "limitpriv": "default", "maxShmMemory": "1G", "anet": [{"linkname": "net0", "lowerLink": "e1000g0", "allowedAddress": "a", "configureAllowedAddress": "true", "defrouter": "d", "linkProtection": "mac-nospoof", "macAddress": "auto"}], "cappedCPU": {"ncpus": "2"}, "cappedMemory": {"physical": "1G", "swap": "2G"}},
	"windows": {"layerFolders": ["C:\\layers\\1"], "devices": [{"id": "x", "idType": "class"}], "resources": {"memory": {"limit": 1}, "cpu": {"count": 2, "shares": 3, "maximum": 4, "affinity": [{"mask": 255, "group": 1}]}, "storage": {"iops": 1, "bps": 2, "sandboxSize": 3}}, "servicing": true, "ignoreFlushesDuringBoot": true, "hyperv": {"utilityVMPath": "C:\\uvm"}, "network": {"endpointList": ["e"], "allowUnqualifiedDNSQuery": true, "DNSSearchList": ["a.b"], "networkSharedContainerName": "n", "networkNamespace": "ns"}},
	"vm": {"hypervisor": {"path": "/hv", "parameters": ["-x"]}, "kernel": {"path": "/k", "parameters": ["quiet"], "initrd": "/i"}, "image": {"path": "/img", "format": "raw"}, "hwconfig": {"deviceTree": "/dt", "vcpus": 2, "memory": 1024, "dtdevs": ["d"], "iomems": [{"firstGFN": 1, "firstMFN": 2, "nrMFNs": 3}, {"firstMFN": null, "nrMFNs": null}], "irqs": [1, 2]}},
	"zos": {"namespaces": [{"type": "pid"}, {"type": "mount", "path": "/p"}]},
	"freebsd": {"devices": [{"path": "/dev/null", "mode": 438}, {"path": "/dev/zero"}], "jail": {"parent": "p", "host": "new", "ip4": "inherit", "ip4Addr": ["10.0.0.1"], "ip6": "disable", "ip6Addr": [], "vnet": "new", "interface": "em0", "vnetInterfaces": ["e1"], "sysvmsg": "new", "sysvsem": "new", "sysvshm": "new", "enforceStatfs": 2, "allow": {"setHostname": true, "rawSockets": true, "chflags": true, "mount": ["nullfs"], "quotas": true, "socketAf": true, "mlock": true, "reservedPorts": true, "suser": true}}}
}`

// fastCases returns every config the tests and the fuzz seeds use.
func fastCases(tb testing.TB) []fastCase {
	tb.Helper()
	rootless := Example()
	ToRootless(rootless, 1000, 1000)
	cases := []fastCase{
		marshalCase(tb, "Example indented", Example(), true),
		marshalCase(tb, "Example compact", Example(), false),
		marshalCase(tb, "Example rootless", rootless, true),
		marshalCase(tb, "test/bundle BaseSpec", bundle.BaseSpec("x"), true),
		marshalCase(tb, "zero spec", &specs.Spec{}, false),
		{name: "rich linux config", config: richConfig, fast: true},
		{name: "other platforms", config: otherPlatforms, fast: true},

		// The configs of load_test.go.
		{"load: unknown properties ignored", `{"ociVersion":"1.0.0","root":{"path":"rootfs","frobnicate":1},"process":{"args":["sh"],"cwd":"/"},"vendorExtension":{"a":[1,2]}}`, false},
		{"load: syntax error", "{\n  \"ociVersion\": \"1.0.0\",\n  \"root\" {}\n}", false},
		{"load: truncated", `{"ociVersion": "1.0.0"`, false},
		{"load: empty file", " ", false},
		{"load: type error", "{\"ociVersion\":\"1.0.0\",\n\"process\":{\"args\":[1]}}", false},
		{"load: not an object", "[]", false},
		{"load: null", "null", false},
		{"load: major version", `{"ociVersion":"2.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`, true},
		{"load: rlimit", `{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","hard":1,"soft":1},{"type":"RLIMIT_FOO","hard":1,"soft":1}]}}`, true},

		// null and empty values.
		{"empty object", `{}`, true},
		{"whitespace everywhere", " \t\r\n{ \"ociVersion\" :\n\"1.0.0\" ,\t\"process\" : { \"args\" : [ \"a\" , \"b\" ] } }\n\t ", true},
		{"null string", `{"ociVersion":null}`, true},
		{"null pointer to struct", `{"process":null,"root":null}`, true},
		{"null struct", `{"process":{"user":null}}`, true},
		{"null bool and integer", `{"root":{"readonly":null},"process":{"user":{"uid":null}}}`, true},
		{"null pointer to integer", `{"process":{"oomScoreAdj":null}}`, true},
		{"null slice", `{"mounts":null}`, true},
		{"empty slice", `{"mounts":[],"process":{"args":[]}}`, true},
		{"null slice elements", `{"mounts":[null,{"destination":"/x"}],"process":{"args":[null,"x"],"user":{"additionalGids":[null,1]}}}`, true},
		{"null map", `{"annotations":null}`, true},
		{"empty map", `{"annotations":{},"linux":{"netDevices":{}}}`, true},
		{"null map values", `{"annotations":{"a":null},"linux":{"resources":{"rdma":{"m":null}}}}`, true},
		{"null embedded field", `{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":null,"minor":1}]}}}}`, true},

		// Values that are certain.
		{"escaped key that is a field name", `{"oci\u0056ersion":"1.0.0","h\u006fstname":"x"}`, true},
		{"escapes", `{"hostname":"\"\\\/\b\f\n\r\t\u0000\u001f\u00e9\u2028\uFFFD\ud83d\ude00\uDBFF\uDFFF"}`, true},
		{"raw UTF-8", `{"hostname":"h\u00e9llo w\u00f6rld 😀 ￿ ` + "\U0010FFFF" + `"}`, true},
		{"integer limits", `{"process":{"oomScoreAdj":-9223372036854775808,"user":{"uid":4294967295,"gid":0},"rlimits":[{"type":"x","hard":18446744073709551615,"soft":0}]},"linux":{"resources":{"blockIO":{"weight":65535},"memory":{"limit":9223372036854775807}}}}`, true},
		{"minus zero into a signed integer", `{"process":{"oomScoreAdj":-0}}`, true},
		{"bools", `{"root":{"readonly":false},"process":{"terminal":true,"noNewPrivileges":false}}`, true},

		// Keys that are not exactly a field's name.
		{"unknown top-level key", `{"ociVersion":"1.0.0","x-vendor":{}}`, false},
		{"unknown nested key", `{"process":{"cwd":"/","unknown":null}}`, false},
		{"key in another case", `{"OCIVERSION":"1.0.0"}`, false},
		{"key in lower case", `{"process":{"noNewPrivileges":true,"nonewprivileges":false}}`, false},
		{"key with the Kelvin sign", "{\"process\":{\"user\":{\"u\u212aid\":1}}}", false},
		{"interface field present", `{"windows":{"layerFolders":null,"credentialSpec":{"a":[1,"x"]}}}`, false},

		// Repeated keys.
		{"repeated top-level key", `{"hostname":"a","hostname":"b"}`, false},
		{"repeated nested key", `{"process":{"cwd":"/","cwd":"/x"}}`, false},
		{"repeated key after null", `{"root":null,"root":{"path":"x"}}`, false},
		{"repeated struct key merges", `{"root":{"path":"x"},"root":{"readonly":true}}`, false},
		{"repeated map key", `{"annotations":{"a":"1","a":"2"}}`, false},
		{"repeated embedded key", `{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":1,"major":2}]}}}}`, false},

		// JSON types that do not fit the Go type.
		{"string for integer", `{"process":{"user":{"uid":"0"}}}`, false},
		{"number for string", `{"hostname":1}`, false},
		{"bool for string", `{"hostname":true}`, false},
		{"number for bool", `{"root":{"readonly":1}}`, false},
		{"string for bool", `{"root":{"readonly":"true"}}`, false},
		{"object for array", `{"mounts":{}}`, false},
		{"array for object", `{"process":[]}`, false},
		{"array for map", `{"annotations":[]}`, false},
		{"object for string", `{"hostname":{}}`, false},
		{"array for string", `{"hostname":["a"]}`, false},
		{"number for map value", `{"annotations":{"a":1}}`, false},
		{"fraction for integer", `{"process":{"user":{"uid":1.0}}}`, false},
		{"exponent for integer", `{"process":{"user":{"uid":1e2}}}`, false},
		{"capital exponent for integer", `{"process":{"oomScoreAdj":1E2}}`, false},
		{"uint32 overflow", `{"process":{"user":{"uid":4294967296}}}`, false},
		{"uint16 overflow", `{"linux":{"resources":{"blockIO":{"weight":65536}}}}`, false},
		{"uint64 overflow", `{"process":{"rlimits":[{"hard":18446744073709551616}]}}`, false},
		{"int64 overflow", `{"linux":{"resources":{"memory":{"limit":9223372036854775808}}}}`, false},
		{"int64 underflow", `{"linux":{"resources":{"memory":{"limit":-9223372036854775809}}}}`, false},
		{"huge integer", `{"process":{"oomScoreAdj":123456789012345678901234567890}}`, false},
		{"negative for unsigned", `{"process":{"user":{"uid":-1}}}`, false},
		{"minus zero for unsigned", `{"process":{"user":{"uid":-0}}}`, false},

		// Strings encoding/json repairs.
		{"invalid UTF-8 in a value", "{\"hostname\":\"a\xffb\"}", false},
		{"invalid UTF-8 after an escape", "{\"hostname\":\"\\n\xc3\"}", false},
		{"invalid UTF-8 in a key", "{\"annotations\":{\"\xe9\":\"x\"}}", false},
		{"UTF-8 encoded surrogate", "{\"hostname\":\"\xed\xa0\x80\"}", false},
		{"lone high surrogate", `{"hostname":"\ud800"}`, false},
		{"lone low surrogate", `{"hostname":"\udc00x"}`, false},
		{"high surrogate then a letter", `{"hostname":"\ud800\u0041"}`, false},
		{"two high surrogates", `{"hostname":"\ud800\ud800"}`, false},
		{"two low surrogates", `{"hostname":"\udc00\udc00"}`, false},
		{"high surrogate at the end", `{"hostname":"\udbff"}`, false},

		// Not one object.
		{"top-level string", `"x"`, false},
		{"top-level number", `1`, false},
		{"top-level true", `true`, false},
		{"empty input", ``, false},
		{"trailing data", `{} x`, false},
		{"two objects", `{}{}`, false},
		{"object then null", `{} null`, false},
		{"trailing NUL", "{}\x00", false},
		{"byte order mark", "\xef\xbb\xbf{}", false},

		// Syntax errors.
		{"missing colon", `{"hostname" "a"}`, false},
		{"missing comma", `{"hostname":"a" "domainname":"b"}`, false},
		{"trailing comma in object", `{"hostname":"a",}`, false},
		{"leading comma in object", `{,"hostname":"a"}`, false},
		{"trailing comma in array", `{"process":{"args":["a",]}}`, false},
		{"leading comma in array", `{"process":{"args":[,"a"]}}`, false},
		{"missing array comma", `{"process":{"args":["a" "b"]}}`, false},
		{"unclosed array", `{"process":{"args":["a"}}`, false},
		{"unclosed object", `{"process":{"args":["a"]}`, false},
		{"unclosed string", `{"hostname":"a}`, false},
		{"leading zero", `{"process":{"user":{"uid":01}}}`, false},
		{"plus sign", `{"process":{"user":{"uid":+1}}}`, false},
		{"lone minus", `{"process":{"oomScoreAdj":-}}`, false},
		{"hex number", `{"process":{"user":{"uid":0x1}}}`, false},
		{"control character in a string", "{\"hostname\":\"a\tb\"}", false},
		{"invalid escape", `{"hostname":"\x41"}`, false},
		{"short unicode escape", `{"hostname":"\u12"}`, false},
		{"bad hex in escape", `{"hostname":"\u12g4"}`, false},
		{"single quotes", `{'hostname':'a'}`, false},
		{"unquoted key", `{hostname:"a"}`, false},
		{"truncated null", `{"root":nul}`, false},
		{"truncated true", `{"root":{"readonly":tru}}`, false},
		{"literal with a tail", `{"root":{"readonly":truex}}`, false},
		{"null with a tail", `{"root":nullx}`, false},
		{"number with a tail", `{"process":{"user":{"uid":1x}}}`, false},
		{"capitalized literal", `{"root":{"readonly":True}}`, false},
		{"vertical tab as space", "{\v}", false},
		{"non-breaking space", "{\u00a0}", false},
	}
	return cases
}

// checkFast decodes data both ways and fails unless decodeFast gave up or
// gave what encoding/json gives. It reports whether decodeFast decoded.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	got, ok := decodeFast(data)
	var want specs.Spec
	err := json.Unmarshal(data, &want)
	if !ok {
		if got != nil {
			t.Errorf("decodeFast gave up but returned %+v", got)
		}
		return false
	}
	if err != nil {
		t.Fatalf("decodeFast decoded %q, but encoding/json fails: %v", data, err)
	}
	if !reflect.DeepEqual(got, &want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(&want)
		t.Fatalf("decodeFast(%q) differs from encoding/json:\n got %s\nwant %s\n(got %#v)", data, g, w, got)
	}
	return true
}

func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	for _, tc := range fastCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if fast := checkFast(t, []byte(tc.config)); fast != tc.fast {
				if tc.fast {
					t.Errorf("decodeFast gave up on %q, want it decoded", tc.config)
				} else {
					t.Errorf("decodeFast decoded %q, want it left to encoding/json", tc.config)
				}
			}
			// decode returns the fast result, or encoding/json's.
			s, err := decode([]byte(tc.config))
			var want specs.Spec
			if jerr := json.Unmarshal([]byte(tc.config), &want); (err == nil) != (jerr == nil) {
				t.Errorf("decode error %v, encoding/json error %v", err, jerr)
			} else if err == nil && !reflect.DeepEqual(s, &want) {
				t.Errorf("decode differs from encoding/json")
			}
		})
	}
}

// TestFastDecodeShapes checks what the null and empty cases decode to, so
// that a change of encoding/json's behaviour shows up here too.
func TestFastDecodeShapes(t *testing.T) {
	s, ok := decodeFast([]byte(`{"mounts":[],"annotations":{},"process":{"args":[null,"x"],"env":null},"linux":{"sysctl":{"a":null},"resources":{"rdma":{"m":null}}}}`))
	if !ok {
		t.Fatal("decodeFast gave up")
	}
	if s.Mounts == nil || len(s.Mounts) != 0 {
		t.Errorf("mounts = %#v, want an empty non-nil slice", s.Mounts)
	}
	if s.Annotations == nil || len(s.Annotations) != 0 {
		t.Errorf("annotations = %#v, want an empty non-nil map", s.Annotations)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{"", "x"}) || s.Process.Env != nil {
		t.Errorf("args = %#v, env = %#v, want [\"\" \"x\"] and nil", s.Process.Args, s.Process.Env)
	}
	if v, ok := s.Linux.Sysctl["a"]; !ok || v != "" {
		t.Errorf("sysctl = %#v, want a: \"\"", s.Linux.Sysctl)
	}
	if v, ok := s.Linux.Resources.Rdma["m"]; !ok || v != (specs.LinuxRdma{}) {
		t.Errorf("rdma = %#v, want m: {}", s.Linux.Resources.Rdma)
	}
	if s.Root != nil || s.Hooks != nil {
		t.Errorf("root = %v, hooks = %v, want nil", s.Root, s.Hooks)
	}
}

// TestFastDecodeStringsAreCopies checks that decoded strings do not alias
// the input buffer, which the caller may reuse.
func TestFastDecodeStringsAreCopies(t *testing.T) {
	data := []byte(`{"hostname":"abc","annotations":{"k":"v"}}`)
	s, ok := decodeFast(data)
	if !ok {
		t.Fatal("decodeFast gave up")
	}
	for i := range data {
		data[i] = 'z'
	}
	if s.Hostname != "abc" || s.Annotations["k"] != "v" {
		t.Errorf("decoded strings changed with the input: %q %v", s.Hostname, s.Annotations)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, tc := range fastCases(f) {
		f.Add([]byte(tc.config))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast(t, data)
	})
}

func TestSpecJSONGenUpToDate(t *testing.T) {
	want, err := gen.Spec()
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	got, err := os.ReadFile("specjson_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("specjson_gen.go is not what internal/specjsongen generates for the current specs-go; run `go generate ./internal/oci/spec/`")
	}
}

// variant is a value with exactly one leaf field set, and the JSON path of
// that field.
type variant struct {
	path     string
	val      reflect.Value
	fallback bool // the path crosses a field left to encoding/json
}

// variants returns, for each leaf field reachable from a value of type t,
// a t holding a non-zero value in that field only (and whatever containers
// lead to it).
func variants(t *testing.T, typ reflect.Type, depth int) []variant {
	if depth > 20 {
		t.Fatalf("type %v nests too deep", typ)
	}
	var out []variant
	switch typ.Kind() {
	case reflect.Struct:
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous || !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			owner := typ
			if len(f.Index) > 1 {
				owner = typ.FieldByIndex(f.Index[:len(f.Index)-1]).Type
			}
			if _, ok := gen.SpecFallback[owner.String()+"."+f.Name]; ok {
				v := reflect.New(typ).Elem()
				v.FieldByIndex(f.Index).Set(reflect.ValueOf(map[string]any{"a": "b"}))
				out = append(out, variant{path: name, val: v, fallback: true})
				continue
			}
			for _, w := range variants(t, f.Type, depth+1) {
				v := reflect.New(typ).Elem()
				v.FieldByIndex(f.Index).Set(w.val)
				out = append(out, variant{path: join(name, w.path), val: v, fallback: w.fallback})
			}
		}
	case reflect.Pointer:
		for _, w := range variants(t, typ.Elem(), depth+1) {
			p := reflect.New(typ.Elem())
			p.Elem().Set(w.val)
			out = append(out, variant{path: w.path, val: p, fallback: w.fallback})
		}
	case reflect.Slice:
		for _, w := range variants(t, typ.Elem(), depth+1) {
			s := reflect.MakeSlice(typ, 2, 2)
			s.Index(1).Set(w.val)
			out = append(out, variant{path: join("[1]", w.path), val: s, fallback: w.fallback})
		}
	case reflect.Map:
		for _, w := range variants(t, typ.Elem(), depth+1) {
			m := reflect.MakeMap(typ)
			m.SetMapIndex(reflect.ValueOf("k").Convert(typ.Key()), w.val)
			out = append(out, variant{path: join("[k]", w.path), val: m, fallback: w.fallback})
		}
	case reflect.String:
		out = append(out, variant{val: reflect.ValueOf("x\"\u00e9").Convert(typ)})
	case reflect.Bool:
		out = append(out, variant{val: reflect.ValueOf(true).Convert(typ)})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		out = append(out, variant{val: reflect.ValueOf(-7).Convert(typ)})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out = append(out, variant{val: reflect.ValueOf(7).Convert(typ)})
	default:
		t.Fatalf("type %v: kind %v not handled by the test", typ, typ.Kind())
	}
	return out
}

func join(a, b string) string {
	switch {
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

func TestFastDecodeCoversEveryField(t *testing.T) {
	vs := variants(t, reflect.TypeFor[specs.Spec](), 0)
	if len(vs) < 200 {
		t.Fatalf("only %d fields found in specs.Spec; the walk is broken", len(vs))
	}
	fallbacks := 0
	for _, v := range vs {
		want := v.val.Addr().Interface().(*specs.Spec)
		data, err := json.Marshal(want)
		if err != nil {
			t.Fatalf("%s: marshal: %v", v.path, err)
		}
		got, ok := decodeFast(data)
		if v.fallback {
			fallbacks++
			if ok {
				t.Errorf("%s: decodeFast decoded %s, want it left to encoding/json", v.path, data)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: decodeFast gave up on %s", v.path, data)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decodeFast(%s) = %s, want the field set", v.path, data, mustJSON(t, got))
		}
		var fromJSON specs.Spec
		if err := json.Unmarshal(data, &fromJSON); err != nil || !reflect.DeepEqual(got, &fromJSON) {
			t.Errorf("%s: decodeFast differs from encoding/json (%v)", v.path, err)
		}
	}
	if fallbacks != len(gen.SpecFallback) {
		t.Errorf("%d fields left to encoding/json found, want %d (gen.SpecFallback)", fallbacks, len(gen.SpecFallback))
	}
	t.Logf("%d fields checked", len(vs))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkDecode compares warm decodes (the cold first decode of a fresh
// process, which is what decodeFast is for, needs a process per run; see
// docs/performance.md).
func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct{ name, config string }{
		{"bundle", marshalCase(b, "bundle", bundle.BaseSpec("x"), true).config},
		{"rich", richConfig},
	} {
		data := []byte(c.config)
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decodeFast(data); !ok {
					b.Fatal("decodeFast gave up")
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var s specs.Spec
				if err := json.Unmarshal(data, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
