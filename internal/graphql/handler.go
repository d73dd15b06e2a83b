package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/labstack/echo/v4"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/httpapi"
)

// Options is the surface's part of the configuration.
type Options struct {
	// AllowQueryParam accepts ?access_token= (tokens.allow_query_param).
	AllowQueryParam bool
	Explorer        bool
	Introspection   bool
	MaxDepth        int
	MaxComplexity   int
	MaxTokens       int
	MaxBatch        int
}

// Surface is the GraphQL surface, mounted by httpapi.Server.Mount at /graphql.
type Surface struct {
	cfg   Options
	exec  *executor.Executor
	cache smallQueries
	log   *slog.Logger
}

// maxBody matches the HTTP layer's limit; a longer body is refused before it is parsed.
const maxBody = 64 << 10

// New builds the executable schema over the service, with the configured limits.
func New(cfg Options, svc *auth.Service, log *slog.Logger) *Surface {
	s := &Surface{cfg: cfg, log: log}
	s.exec = executor.New(NewExecutableSchema(Config{Resolvers: &resolver{svc: svc}}))
	s.exec.SetParserTokenLimit(cfg.MaxTokens)
	s.cache = smallQueries{lru.New[*ast.QueryDocument](256)}
	s.exec.SetQueryCache(s.cache)
	s.exec.SetErrorPresenter(s.present)
	s.exec.SetRecoverFunc(s.recoverPanic)
	s.exec.Use(guard{maxDepth: cfg.MaxDepth, maxComplexity: cfg.MaxComplexity})
	if cfg.Introspection {
		s.exec.Use(extension.Introspection{})
	}
	return s
}

// Prefix is where the surface is mounted; it also answers under /t/{tenantId}/graphql.
func (s *Surface) Prefix() string { return "/graphql" }

// Routes serves POST for operations and, when enabled, the explorer page and its assets on GET.
// throttle is the per-IP bucket, which only logins spend: one route serves every operation.
func (s *Surface) Routes(g *echo.Group, throttle echo.MiddlewareFunc) {
	g.POST("", func(c echo.Context) error { return s.serve(c, throttle) })
	if s.cfg.Explorer {
		g.GET("", explorerPage)
		g.GET("/explorer.js", explorerAsset("explorer.js", "text/javascript; charset=utf-8"))
		g.GET("/explorer.css", explorerAsset("explorer.css", "text/css; charset=utf-8"))
	}
}

// Request-level error codes, in extensions.code beside gqlgen's GRAPHQL_PARSE_FAILED and
// GRAPHQL_VALIDATION_FAILED.
const (
	codeBadRequest    = "BAD_REQUEST"
	codeTooLarge      = "PAYLOAD_TOO_LARGE"
	codeUnsupported   = "UNSUPPORTED_MEDIA_TYPE"
	codeBatchLimit    = "BATCH_LIMIT_EXCEEDED"
	codeTooManyLogins = "TOO_MANY_LOGINS"
	codeInternal      = "INTERNAL_SERVER_ERROR"
)

// WriteError answers an error raised outside the handler (a body over 64 KiB refused by its length, a
// panic, a method /graphql does not take, an unknown path under it) as a GraphQL error with the status
// REST would answer and extensions.code the catalogue code in upper case.
func (s *Surface) WriteError(c echo.Context, err error) {
	cl := httpapi.Classify(err)
	code := strings.ToUpper(cl.Code)
	if cl.Status == http.StatusInternalServerError {
		code = codeInternal
	}
	httpapi.SetRetryAfter(c, cl)
	writeJSON(c, cl.Status, errorResponse(cl.Detail, code))
}

// operation is one GraphQL request object.
type operation struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

// pass is the handler behind the per-IP bucket when a login asks it for a token.
func pass(echo.Context) error { return nil }

func (s *Surface) serve(c echo.Context, throttle echo.MiddlewareFunc) error {
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); mt != "" && mt != echo.MIMEApplicationJSON && mt != "application/graphql+json" {
		return writeJSON(c, http.StatusUnsupportedMediaType, errorResponse("Send the operation as application/json: {\"query\": ..., \"variables\": {...}}.", codeUnsupported))
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(c.Request().Body); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return writeJSON(c, http.StatusRequestEntityTooLarge, errorResponse("The request body exceeds 64 KiB.", codeTooLarge))
		}
		return writeJSON(c, http.StatusBadRequest, errorResponse("The request body could not be read.", codeBadRequest))
	}
	ops, batched, err := decodeOperations(body.Bytes(), s.cfg.MaxBatch)
	if err != nil {
		return writeJSON(c, http.StatusBadRequest, errorResponse(err.Error(), err.code))
	}
	req := &request{accessToken: httpapi.AccessToken(c, s.cfg.AllowQueryParam), meta: httpapi.Meta(c),
		allowIP: func() (bool, time.Duration) {
			if err := throttle(pass)(c); err != nil {
				return false, httpapi.Classify(err).RetryAfter
			}
			return true, 0
		}}
	ctx := withRequest(c.Request().Context(), req)
	results := make([]*gql.Response, len(ops))
	status := http.StatusOK
	for i, op := range ops {
		var ran bool
		results[i], ran = s.execute(ctx, op, c.Request().Header)
		if !ran && !batched {
			// The operation was refused before it ran (GraphQL over HTTP: 400 for a request that is
			// not a valid operation).
			status = http.StatusBadRequest
		}
	}
	if batched {
		return writeJSON(c, status, results)
	}
	return writeJSON(c, status, results[0])
}

// execute runs one operation; ran is false when it was refused before running.
func (s *Surface) execute(ctx context.Context, op operation, headers http.Header) (res *gql.Response, ran bool) {
	if op.Query == "" {
		return errorResponse("The request has no query.", codeBadRequest), false
	}
	if _, known := s.cache.Get(ctx, op.Query); !known {
		if err := countFields(op.Query, s.cfg.MaxTokens, s.cfg.MaxComplexity); err != nil {
			return &gql.Response{Errors: gqlerror.List{err}}, false
		}
	}
	ctx = gql.StartOperationTrace(ctx)
	params := &gql.RawParams{Query: op.Query, OperationName: op.OperationName, Variables: op.Variables,
		Extensions: op.Extensions, Headers: headers}
	start := gql.Now()
	params.ReadTime = gql.TraceTiming{Start: start, End: start}
	rc, errs := s.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		return s.exec.DispatchError(gql.WithOperationContext(ctx, rc), errs), false
	}
	responses, ctx := s.exec.DispatchOperation(ctx, rc)
	return responses(ctx), true
}

// requestError is a body that is not a GraphQL request.
type requestError struct {
	msg  string
	code string
}

func (e *requestError) Error() string { return e.msg }

// decodeOperations reads one request object, or a batch of them as a JSON array.
func decodeOperations(body []byte, maxBatch int) ([]operation, bool, *requestError) {
	trimmed := bytes.TrimSpace(body)
	notRequest := &requestError{"The body must be a JSON object {\"query\": ..., \"variables\": {...}, \"operationName\": ...}, or an array of them.", codeBadRequest}
	if len(trimmed) == 0 {
		return nil, false, &requestError{"The request has no query.", codeBadRequest}
	}
	batched := trimmed[0] == '['
	if !batched && trimmed[0] != '{' {
		return nil, false, notRequest
	}
	// Numbers stay float64: json.Number is a string to the variable coercion, which would take 5 for a
	// String! variable.
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var ops []operation
	var err error
	if batched {
		err = dec.Decode(&ops)
	} else {
		ops = make([]operation, 1)
		err = dec.Decode(&ops[0])
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return nil, false, &requestError{fmt.Sprintf("%q has the wrong JSON type: %s.", te.Field, te.Value), codeBadRequest}
		}
		return nil, false, notRequest
	}
	switch {
	case len(ops) == 0:
		return nil, false, &requestError{"The batch is empty.", codeBadRequest}
	case len(ops) > maxBatch:
		return nil, false, &requestError{fmt.Sprintf("A batch may hold at most %d operations.", maxBatch), codeBatchLimit}
	}
	return ops, batched, nil
}

func errorResponse(message, code string) *gql.Response {
	return &gql.Response{Errors: gqlerror.List{{Message: message, Extensions: map[string]any{"code": code}}}}
}

func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, b)
}

// present shapes every error a resolver returned: the sets' own errors pass; one login per request
// is said so; anything else is the server's failure, logged with the request id and not described.
func (s *Surface) present(ctx context.Context, err error) *gqlerror.Error {
	if errors.Is(err, errTooManyLogins) {
		e := gqlerror.WrapPath(gql.GetPath(ctx), err)
		e.Message = "Only one login (tokenCreate or tokenAuth) may run per request."
		e.Extensions = map[string]any{"code": codeTooManyLogins}
		return e
	}
	if gqlErr, ok := errors.AsType[*gqlerror.Error](err); ok {
		return gqlErr
	}
	s.log.ErrorContext(ctx, "graphql resolver failed", "path", gql.GetPath(ctx).String(), "err", err)
	e := gqlerror.WrapPath(gql.GetPath(ctx), err)
	e.Message = "Something went wrong on our side; quote the request id if you report it."
	e.Extensions = map[string]any{"code": codeInternal}
	return e
}

func (s *Surface) recoverPanic(ctx context.Context, v any) error {
	s.log.ErrorContext(ctx, "panic in graphql resolver", "panic", v)
	return errors.New("panic in resolver")
}

// smallQueries caches parsed and validated documents of ordinary size only, so a stream of large
// distinct documents cannot fill memory through the cache.
type smallQueries struct{ gql.Cache[*ast.QueryDocument] }

const maxCachedQuery = 4 << 10

func (c smallQueries) Add(ctx context.Context, key string, doc *ast.QueryDocument) {
	if len(key) <= maxCachedQuery {
		c.Cache.Add(ctx, key, doc)
	}
}
