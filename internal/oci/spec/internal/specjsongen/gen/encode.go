package gen

import (
	"fmt"
	"reflect"
)

// The encoder: one function per struct type reachable from the root (and
// per slice, map or pointer type that is itself an element), named "fe" and
// the type's suffix, of type func(*fastEncoder, *T) bool, calling the
// helpers of internal/oci/spec/fastjson_enc.go. It appends exactly what
// json.Marshal writes for the value, or returns false (the caller then
// encodes with encoding/json): only a field listed in Config.Fallback that
// is not nil makes it return false. It supports what the decoder supports
// (the types check and fields refuse are refused here too), except:
// `omitzero` on a struct or on a type with an IsZero method, and a
// Config.Fallback field whose kind has no nil.

// efn returns the name of the generated function that encodes a t (a
// struct, pointer, slice or map type), queueing it to be written.
func (g *generator) efn(t reflect.Type) (string, error) {
	if name, ok := g.efuncs[t]; ok {
		return name, nil
	}
	if err := check(t); err != nil {
		return "", err
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() == "" {
			return "", fmt.Errorf("anonymous struct %v is not supported", t)
		}
	case reflect.Pointer, reflect.Slice, reflect.Map:
	default:
		return "", fmt.Errorf("no generated function for kind %v", t.Kind())
	}
	name := "fe" + suffix(t)
	if other, ok := g.ebyName[name]; ok {
		return "", fmt.Errorf("types %v and %v would share the function name %s", other, t, name)
	}
	g.ebyName[name] = t
	g.efuncs[t] = name
	g.equeue = append(g.equeue, t)
	return name, nil
}

// encScalar returns, for a boolean, integer or string kind, the fastEncoder
// method that writes it and the conversion of the value to the method's
// argument type; "" for the kinds with a generated function, and an error
// for the kinds that are not supported.
func encScalar(t reflect.Type) (method, conv string, err error) {
	if _, err := scalarHelper(t); err != nil {
		return "", "", err
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool", "bool", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int", "int64", nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint", "uint64", nil
	case reflect.String:
		return "str", "string", nil
	}
	return "", "", nil
}

// eelemFunc returns an expression of type func(*fastEncoder, *T) bool that
// encodes a t.
func (g *generator) eelemFunc(t reflect.Type) (string, error) {
	if err := check(t); err != nil {
		return "", err
	}
	method, _, err := encScalar(t)
	if err != nil {
		return "", err
	}
	if method == "" {
		return g.efn(t)
	}
	te, err := g.typeExpr(t)
	if err != nil {
		return "", err
	}
	helper := map[string]string{"bool": "encBool", "int": "encInt", "uint": "encUint", "str": "encStr"}[method]
	return helper + "[" + te + "]", nil
}

// ewrap returns the call of encPtr, encSlice or encMap for a t at ptr.
func (g *generator) ewrap(t reflect.Type, ptr string) (string, error) {
	helper, err := g.wrapper(t, "enc")
	if err != nil {
		return "", err
	}
	elem, err := g.eelemFunc(t.Elem())
	if err != nil {
		return "", fmt.Errorf("type %v: %w", t, err)
	}
	return helper + "(e, " + ptr + ", " + elem + ")", nil
}

// estmt returns the statements that encode the field v.<path>, of type t,
// after its key; nonNil says that the caller checked that it is not nil.
func (g *generator) estmt(t reflect.Type, path string, nonNil bool) (string, error) {
	if err := check(t); err != nil {
		return "", err
	}
	method, conv, err := encScalar(t)
	if err != nil {
		return "", err
	}
	if method != "" {
		if t.PkgPath() == "" && t.Name() == conv {
			return fmt.Sprintf("e.%s(v.%s)\n", method, path), nil
		}
		return fmt.Sprintf("e.%s(%s(v.%s))\n", method, conv, path), nil
	}
	var call string
	switch t.Kind() {
	case reflect.Pointer:
		if !nonNil {
			call, err = g.ewrap(t, "&v."+path)
			break
		}
		var elem string
		if elem, err = g.eelemFunc(t.Elem()); err != nil {
			err = fmt.Errorf("type %v: %w", t, err)
		}
		call = elem + "(e, v." + path + ")"
	case reflect.Slice, reflect.Map:
		call, err = g.ewrap(t, "&v."+path)
	default:
		var name string
		name, err = g.efn(t)
		call = name + "(e, &v." + path + ")"
	}
	if err != nil {
		return "", err
	}
	return "if !" + call + " {\nreturn false\n}\n", nil
}

// hasNil reports whether the zero value of kind k is nil.
func hasNil(k reflect.Kind) bool {
	switch k {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

// written returns the condition under which encoding/json writes field f
// ("" when it always does), as encoding/json's isEmptyValue (omitempty)
// and reflect.Value.IsZero (omitzero) decide for f's kind.
func written(f field, where string) (string, error) {
	t := f.typ
	v := "v." + f.goPath
	if f.omitZero {
		if t.Implements(isZeroer) || reflect.PointerTo(t).Implements(isZeroer) {
			return "", fmt.Errorf("%s: omitzero on type %v, which has an IsZero method, is not supported", where, t)
		}
		if t.Kind() == reflect.Struct {
			return "", fmt.Errorf("%s: omitzero on struct type %v is not supported", where, t)
		}
	}
	if !f.omitEmpty && !f.omitZero {
		return "", nil
	}
	switch k := t.Kind(); {
	case k == reflect.String || (k == reflect.Slice || k == reflect.Map) && f.omitEmpty:
		// A nil slice or map has length 0 too.
		return "len(" + v + ") != 0", nil
	case hasNil(k):
		return v + " != nil", nil
	case k == reflect.Bool:
		return v, nil
	case k >= reflect.Int && k <= reflect.Uint64:
		return v + " != 0", nil
	case k == reflect.Struct:
		return "", nil // omitempty does nothing to a struct
	}
	return "", fmt.Errorf("%s: kind %v is not supported", where, t.Kind())
}

// eemit writes the encoder function of t.
func (g *generator) eemit(t reflect.Type) error {
	te, err := g.typeExpr(t)
	if err != nil {
		return err
	}
	name := g.efuncs[t]
	if t.Kind() != reflect.Struct {
		body, err := g.ewrap(t, "v")
		if err != nil {
			return err
		}
		fmt.Fprintf(&g.body, "// %s encodes a %s.\nfunc %s(e *fastEncoder, v *%s) bool {\nreturn %s\n}\n\n", name, te, name, te, body)
		return nil
	}

	var fields []field
	if err := g.fields(t, "", &fields); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, f := range fields {
		if other, dup := seen[f.name]; dup {
			return fmt.Errorf("struct %v: fields %s and %s share the JSON name %q, which is not supported", t, other, f.goPath, f.name)
		}
		seen[f.name] = f.goPath
	}

	b := &g.body
	fmt.Fprintf(b, "// %s encodes a %s.\nfunc %s(e *fastEncoder, v *%s) bool {\n", name, te, name, te)
	if len(fields) == 0 {
		b.WriteString("e.b = append(e.b, \"{}\"...)\nreturn true\n}\n\n")
		return nil
	}
	b.WriteString("start := len(e.b)\n")
	for _, f := range fields {
		where := fmt.Sprintf("field %v.%s (json %q)", t, f.goPath, f.name)
		cond, err := written(f, where)
		if err != nil {
			return err
		}
		// Each key is written with a comma before it; end turns the first
		// comma into the '{'.
		key := "e.b = append(e.b, `,\"" + f.name + "\":`...)\n" // validName: no '`' or escapes
		var stmt string
		if f.fallback != "" {
			if !hasNil(f.typ.Kind()) {
				return fmt.Errorf("%s: a fallback field of kind %v is not supported by the encoder", where, f.typ.Kind())
			}
			stmt = fmt.Sprintf("if v.%s != nil {\nreturn false // left to encoding/json: %s\n}\n", f.goPath, f.fallback)
			if cond == "" {
				stmt += key + "e.b = append(e.b, \"null\"...)\n"
			}
			b.WriteString(stmt)
			continue
		}
		stmt, err = g.estmt(f.typ, f.goPath, cond == "v."+f.goPath+" != nil")
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if cond == "" {
			b.WriteString(key + stmt)
		} else {
			fmt.Fprintf(b, "if %s {\n%s%s}\n", cond, key, stmt)
		}
	}
	b.WriteString("return e.end(start)\n}\n\n")
	return nil
}
