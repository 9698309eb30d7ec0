package secrettemplate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

const (
	// maxKeys and maxSourceRunes mirror the API's validation, for objects that were stored
	// before it or without it.
	maxKeys        = 32
	maxSourceRunes = 8192
	// maxMessageRunes bounds the text a parse error brings into a condition.
	maxMessageRunes = 300
)

// fields are the fields of Input a template may read.
var fields = []string{"AccessToken", "AccessTokenSecret", "Connection", "ExpiresAt", "Provider", "RefreshToken", "Scope", "TokenType"}

var (
	secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	parsePos  = regexp.MustCompile(`^(\d+(?::\d+)?): `)
)

// Template is a compiled spec.secret.template.data. It is immutable, and Render may be called
// concurrently.
type Template struct {
	keys                []string
	sources             map[string]string
	includeRefreshToken bool
}

// Compile checks every key's template and keeps them for Render. It refuses, naming the key
// and the position: a template that does not parse; a field that Input does not have, or a
// field of a field (.ExpiresAt.Unix); .RefreshToken unless includeRefreshToken; a function
// outside the fixed set; range, define, template and block. Errors list the keys in sorted
// order.
func Compile(t *authv1alpha1.SecretTemplate, includeRefreshToken bool) (*Template, error) {
	if t == nil || len(t.Data) == 0 {
		return nil, errors.New("the template has no data keys")
	}
	if len(t.Data) > maxKeys {
		return nil, fmt.Errorf("the template has %d data keys, over the limit of %d", len(t.Data), maxKeys)
	}
	sources := make(map[string]string, len(t.Data))
	for k, v := range t.Data {
		sources[k] = string(v)
	}
	c := &Template{keys: slices.Sorted(maps.Keys(sources)), sources: sources, includeRefreshToken: includeRefreshToken}
	var msgs []string
	for _, k := range c.keys {
		if err := check(k, sources[k], includeRefreshToken); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

// Keys are the data keys the template writes, sorted.
func (t *Template) Keys() []string { return slices.Clone(t.keys) }

// newTemplate parses one key's template with the function set funcs.
func newTemplate(key, src string, funcs template.FuncMap) (*template.Template, error) {
	return template.New(key).Option("missingkey=error").Funcs(funcs).Parse(src)
}

// check compiles one key.
func check(key, src string, includeRefreshToken bool) error {
	switch {
	case len(key) > 253 || !secretKey.MatchString(key) || key == "." || key == "..":
		return fmt.Errorf("key %q is not a valid Secret key: letters, digits, '-', '_' and '.', at most 253 characters", safetext.Clip(key, 64))
	case utf8.RuneCountInString(src) > maxSourceRunes:
		return fmt.Errorf("key %q: the template is over %d characters", key, maxSourceRunes)
	}
	tmpl, err := newTemplate(key, src, funcMap(&meter{}))
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: "+key+":")
		if m := parsePos.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("key %q at line %s: %s", key, m[1], safetext.Clip(msg[len(m[0]):], maxMessageRunes))
		}
		return fmt.Errorf("key %q: %s", key, safetext.Clip(msg, maxMessageRunes))
	}
	if tmpl.Tree == nil {
		return nil
	}
	w := walker{tree: tmpl.Tree, includeRefreshToken: includeRefreshToken}
	if err := w.node(tmpl.Root); err != nil {
		return fmt.Errorf("key %q at %s", key, err)
	}
	for _, d := range tmpl.Templates() {
		if d.Name() != key {
			return fmt.Errorf("key %q: define and block are not available", key)
		}
	}
	return nil
}

// walker checks a parse tree against the fixed data and function set.
type walker struct {
	tree                *parse.Tree
	includeRefreshToken bool
}

// fail is an error at n's position ("line:col: what").
func (w walker) fail(n parse.Node, format string, args ...any) error {
	loc, _ := w.tree.ErrorContext(n)
	return fmt.Errorf("%s: %s", position(strings.TrimPrefix(loc, w.tree.ParseName+":")), fmt.Sprintf(format, args...))
}

// position turns text/template's "line:column" (column from 0) into one with the column from
// 1, as editors count; anything else is returned as it is.
func position(loc string) string {
	line, col, ok := strings.Cut(loc, ":")
	n, err := strconv.Atoi(col)
	if !ok || err != nil {
		return loc
	}
	return line + ":" + strconv.Itoa(n+1)
}

func (w walker) node(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := w.node(c); err != nil {
				return err
			}
		}
	case *parse.TextNode, *parse.CommentNode, *parse.DotNode, *parse.NilNode, *parse.BoolNode,
		*parse.NumberNode, *parse.StringNode:
	case *parse.ActionNode:
		return w.node(n.Pipe)
	case *parse.IfNode:
		return w.branch(&n.BranchNode)
	case *parse.WithNode:
		return w.branch(&n.BranchNode)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := w.node(c); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := w.node(a); err != nil {
				return err
			}
		}
	case *parse.IdentifierNode:
		if !slices.Contains(available, n.Ident) {
			return w.fail(n, "function %q is not available", n.Ident)
		}
	case *parse.FieldNode:
		return w.field(n, n.Ident)
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] != "$" {
			return w.fail(n, "%s: fields of a variable are not available", n)
		}
		if len(n.Ident) > 1 {
			return w.field(n, n.Ident[1:])
		}
	case *parse.ChainNode:
		return w.fail(n, "%s: fields of a value are not available", n)
	case *parse.RangeNode:
		return w.fail(n, "range is not available")
	case *parse.TemplateNode:
		return w.fail(n, "template and block are not available")
	default:
		return w.fail(n, "%s is not available", n)
	}
	return nil
}

func (w walker) branch(n *parse.BranchNode) error {
	for _, c := range []parse.Node{n.Pipe, n.List, n.ElseList} {
		if err := w.node(c); err != nil {
			return err
		}
	}
	return nil
}

// field checks a field access: one field of Input (.ExpiresAt, not .ExpiresAt.Unix).
func (w walker) field(n parse.Node, ident []string) error {
	name := "." + strings.Join(ident, ".")
	switch {
	case !slices.Contains(fields, ident[0]):
		return w.fail(n, "unknown field %s; the fields are .%s", name, strings.Join(fields, ", ."))
	case len(ident) > 1:
		return w.fail(n, "%s: fields of .%s are not available; use the functions (rfc3339, unixEpoch...)", name, ident[0])
	case ident[0] == "RefreshToken" && !w.includeRefreshToken:
		return w.fail(n, ".RefreshToken needs spec.secret.includeRefreshToken: true")
	}
	return nil
}
