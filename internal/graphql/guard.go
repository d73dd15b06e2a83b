package graphql

import (
	"context"
	"errors"
	"fmt"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// guard refuses an operation, before anything runs, that nests fields deeper than maxDepth or selects
// more than maxComplexity fields in all (counting every field each time a fragment is spread).
// Introspection queries that nest list fields (each multiplying the answer by the size of the schema)
// are refused by gqlparser's own validation.
//
// The walk spends one unit of the complexity budget per field and per fragment spread and stops as
// soon as the budget is gone, so its own cost is bounded by the limit however the fragments fan out.
type guard struct {
	maxDepth      int
	maxComplexity int
}

const (
	codeDepthLimit      = "DEPTH_LIMIT_EXCEEDED"
	codeComplexityLimit = "COMPLEXITY_LIMIT_EXCEEDED"
)

func (guard) ExtensionName() string               { return "LatchGuard" }
func (guard) Validate(gql.ExecutableSchema) error { return nil }

func (g guard) MutateOperationContext(_ context.Context, rc *gql.OperationContext) *gqlerror.Error {
	w := walk{guard: g, budget: g.maxComplexity}
	return w.selections(rc.Operation.SelectionSet, 1)
}

type walk struct {
	guard
	budget int
}

func (w *walk) spend() *gqlerror.Error {
	w.budget--
	if w.budget < 0 {
		return limitError(codeComplexityLimit, "The operation selects more than %d fields (counting fragments each time they are spread).", w.maxComplexity)
	}
	return nil
}

func (w *walk) selections(set ast.SelectionSet, depth int) *gqlerror.Error {
	for _, sel := range set {
		var err *gqlerror.Error
		switch s := sel.(type) {
		case *ast.Field:
			err = w.field(s, depth)
		case *ast.InlineFragment:
			err = w.selections(s.SelectionSet, depth)
		case *ast.FragmentSpread:
			if err = w.spend(); err == nil && s.Definition != nil {
				err = w.selections(s.Definition.SelectionSet, depth)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walk) field(f *ast.Field, depth int) *gqlerror.Error {
	if err := w.spend(); err != nil {
		return err
	}
	if depth > w.maxDepth {
		return limitError(codeDepthLimit, "The operation nests fields deeper than %d levels.", w.maxDepth)
	}
	return w.selections(f.SelectionSet, depth+1)
}

func limitError(code, format string, limit int) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, limit), Extensions: map[string]any{"code": code}}
}

// countFields refuses, before validation, a document that writes more fields than maxFields in all
// its operations and fragments. Validation compares fields that share a response name pairwise, so
// its cost grows with the square of their number: 5,000 repetitions of one field took over a second
// of CPU. A document that does not parse is refused here with the parser's error, not parsed twice.
func countFields(query string, maxTokens, maxFields int) *gqlerror.Error {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, maxTokens)
	if gqlErr, ok := errors.AsType[*gqlerror.Error](err); ok {
		errcode.Set(gqlErr, errcode.ParseFailed)
		return gqlErr
	}
	if err != nil {
		return gqlerror.Wrap(err)
	}
	n := 0
	var count func(ast.SelectionSet)
	count = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				n++
				count(s.SelectionSet)
			case *ast.InlineFragment:
				count(s.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		count(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		count(f.SelectionSet)
	}
	if n > maxFields {
		return limitError(codeComplexityLimit, "The document writes more than %d fields.", maxFields)
	}
	return nil
}
