package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/metrics"
	"github.com/latch-auth/latch/internal/token"
)

// loadOpenAPI parses and validates the embedded document. kin-openapi validates 3.1 documents as
// 3.1 (type arrays, const, $ref siblings); it does not check the document against the official
// OAS 3.1 meta-schema, which is why the tests below check the parts that matter to clients.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate openapi.json: %v", err)
	}
	return doc
}

func TestOpenAPIIsValid31(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
}

// allRoutesServer is a Server with every optional route on. Building the router touches neither the
// service nor the inbox, so neither needs to work.
func allRoutesServer() *Server {
	cfg := Config{Sandbox: mail.NewInbox(nil, 1), Metrics: metrics.New(nil, nil), AdminPublic: true}
	return New(cfg, nil, slog.New(slog.DiscardHandler))
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var routes []string
	for _, r := range allRoutesServer().echo.Routes() {
		routes = append(routes, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("Echo routes (-) vs documented operations (+):\n%s", diff)
	}
}

func TestOpenAPIErrorCodeEnumIsTheCatalogue(t *testing.T) {
	doc := loadOpenAPI(t)
	codeSchema := doc.Components.Schemas["Problem"].Value.Properties["code"].Value
	var enum []string
	for _, v := range codeSchema.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	want := slices.Sorted(maps.Keys(Catalogue()))
	if diff := cmp.Diff(want, enum); diff != "" {
		t.Errorf("Problem.code enum vs Catalogue() (-catalogue +enum):\n%s", diff)
	}
}

// TestOpenAPIErrorCodesDocumented checks x-error-codes and the table in info.description against the
// catalogue: same codes, statuses and titles, each with a description.
func TestOpenAPIErrorCodesDocumented(t *testing.T) {
	type entry struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	var raw struct {
		Codes map[string]struct {
			entry
			Description string `json:"description"`
		} `json:"x-error-codes"`
		Info struct {
			Description string `json:"description"`
		} `json:"info"`
	}
	if err := json.Unmarshal(OpenAPI(), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]entry{}
	for code, e := range catalogue {
		want[code] = entry{Status: e.status, Title: e.title}
		row := "| `" + code + "` | " + strconv.Itoa(e.status) + " |"
		if !strings.Contains(raw.Info.Description, row) {
			t.Errorf("info.description has no table row %q", row)
		}
	}
	got := map[string]entry{}
	for code, e := range raw.Codes {
		got[code] = e.entry
		if e.Description == "" {
			t.Errorf("x-error-codes.%s has no description", code)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("x-error-codes vs catalogue (-catalogue +document):\n%s", diff)
	}
}

// problemComponents maps each status to its shared problem response, which pins status and code: an
// operation answering 401 can only describe a 401 code.
func problemComponents(t *testing.T, doc *openapi3.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	for name, ref := range doc.Components.Responses {
		mt := ref.Value.Content.Get("application/problem+json")
		if mt == nil {
			continue
		}
		s := mt.Schema.Value
		if len(s.AllOf) != 2 || s.AllOf[0].Ref != "#/components/schemas/Problem" {
			t.Errorf("responses.%s: schema must be allOf [Problem, {status, code}]", name)
			continue
		}
		narrow := s.AllOf[1].Value.Properties
		status := int(narrow["status"].Value.Const.(float64))
		if prev, dup := out[status]; dup {
			t.Errorf("responses %s and %s both describe %d", prev, name, status)
		}
		out[status] = name
		var codes []string
		for _, c := range narrow["code"].Value.Enum {
			codes = append(codes, c.(string))
		}
		var want []string
		for code, st := range Catalogue() {
			if st == status {
				want = append(want, code)
			}
		}
		slices.Sort(codes)
		slices.Sort(want)
		if diff := cmp.Diff(want, codes); diff != "" {
			t.Errorf("responses.%s codes vs catalogue codes of %d (-catalogue +document):\n%s", name, status, diff)
		}
	}
	for code, status := range Catalogue() {
		if _, ok := out[status]; !ok {
			t.Errorf("no problem response component for status %d (code %s)", status, code)
		}
	}
	return out
}

func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	byStatus := problemComponents(t, doc)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for key, ref := range op.Responses.Map() {
				where := method + " " + path + " " + key
				status, err := strconv.Atoi(key)
				if err != nil {
					t.Errorf("%s: only explicit statuses are documented", where)
					continue
				}
				if status >= 400 {
					if want := "#/components/responses/" + byStatus[status]; ref.Ref != want {
						t.Errorf("%s: $ref = %q, want %q", where, ref.Ref, want)
					}
				}
				headers := ref.Value.Headers
				if h := headers["X-Request-Id"]; h == nil || !h.Value.Required {
					t.Errorf("%s: X-Request-Id is not a required header", where)
				}
				if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
					if h := headers["Retry-After"]; h == nil || !h.Value.Required {
						t.Errorf("%s: Retry-After is not a required header", where)
					}
				}
			}
			if op.Responses.Status(http.StatusInternalServerError) == nil {
				t.Errorf("%s %s: no 500", method, path)
			}
		}
	}
}

// jsonKindOf is the JSON Schema type a Go value of t encodes as.
func jsonKindOf(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "string"
	case t == reflect.TypeFor[json.RawMessage]():
		return "object" // the raw JSON objects Latch hands out (metadata)
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Slice:
		return "array"
	}
	return "object"
}

type field struct {
	Type     string
	Required bool
}

// goFields lists the JSON fields of a struct: name, type, and whether it is always present. A pointer
// that is always present may be null.
func goFields(v any) map[string]field {
	out := map[string]field{}
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := field{Type: jsonKindOf(t.Field(i).Type), Required: !strings.Contains(opts, "omitempty")}
		if f.Required && t.Field(i).Type.Kind() == reflect.Pointer {
			f.Type += "|null"
		}
		out[name] = f
	}
	return out
}

func schemaFields(s *openapi3.Schema) map[string]field {
	out := map[string]field{}
	for name, p := range s.Properties {
		types := p.Value.Type.Slice()
		out[name] = field{Type: strings.Join(types, "|"), Required: slices.Contains(s.Required, name)}
	}
	return out
}

// TestOpenAPIResponseSchemasMatchGoTypes: each response schema has exactly the fields of the struct
// the handler encodes, with their JSON types, required unless omitempty, and no others allowed.
func TestOpenAPIResponseSchemasMatchGoTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{
		"TokenPair": tokenResponse{}, "Me": meResponse{}, "Session": sessionResponse{}, "VerifyResult": verifyResponse{},
		"Message": messageResponse{}, "LoginStarted": loginResponse{}, "Problem": Problem{}, "FieldError": auth.FieldError{},
		"SandboxEmail": sandboxEmail{}, "TOTPSetup": totpSetupResponse{}, "RecoveryCodes": recoveryCodesResponse{},
		"Tenant": adminTenant{}, "TenantSettings": tenantSettings{}, "TenantList": list[adminTenant]{},
		"AdminUser": adminUser{}, "UserList": list[adminUser]{}, "AdminSession": adminSession{}, "AdminSessionList": list[adminSession]{},
		"SecurityEvent": adminEvent{}, "EventActor": eventActor{}, "EventList": list[adminEvent]{},
		"WebhookDelivery": adminDelivery{}, "WebhookDeliveryList": list[adminDelivery]{},
		"Export": exportResponse{}, "ExportProfile": exportProfile{}, "ExportSession": exportSession{}, "ExportCode": exportCode{},
		"ExportEmail": exportEmail{}, "ExportEvent": exportEvent{}, "ExportTwoFactor": exportSecondFactors{},
	} {
		s := doc.Components.Schemas[name].Value
		if diff := cmp.Diff(goFields(v), schemaFields(s)); diff != "" {
			t.Errorf("schema %s vs %T (-Go +schema):\n%s", name, v, diff)
		}
		if ap := s.AdditionalProperties.Has; ap == nil || *ap {
			t.Errorf("schema %s allows undocumented fields", name)
		}
	}
}

// requestFields are the fields of a request body: presence is checked by the service, not by
// omitempty, and a pointer only tells a field that was sent from one that was not.
func requestFields(v any) map[string]field {
	out := goFields(v)
	for k, f := range out {
		out[k] = field{Type: strings.TrimSuffix(f.Type, "|null")}
	}
	return out
}

// TestOpenAPIRequestSchemasMatchGoTypes: each operation's body, in every media type it takes (the
// admin API's: JSON only), has the fields of the struct its handler decodes into.
func TestOpenAPIRequestSchemasMatchGoTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	bodies := map[string]any{
		"register": credentialsRequest{}, "login": loginRequest{}, "validateRegister": registerCodeRequest{},
		"validateLogin": codeRequest{}, "refresh": refreshRequest{}, "logout": logoutRequest{}, "verify": verifyRequest{},
		"forgotPassword": forgotRequest{}, "resetPassword": resetRequest{}, "changePassword": changeRequest{},
		"totpSetup": totpSetupRequest{}, "totpEnable": totpEnableRequest{}, "totpDisable": totpDisableRequest{},
		"adminCreateTenant": createTenantRequest{}, "adminUpdateTenant": updateTenantRequest{},
		"adminCreateUser": createUserRequest{}, "adminUpdateUser": updateUserRequest{},
		"requestEmailChange": emailChangeRequest{}, "confirmEmailChange": emailCodeRequest{},
		"requestDeletion": deletionRequest{}, "deleteMe": emailCodeRequest{},
	}
	adminSettings := schemaFields(doc.Components.Schemas["SettingsRequest"].Value)
	for k := range adminSettings {
		adminSettings[k] = field{Type: adminSettings[k].Type}
	}
	wantSettings := requestFields(settingsRequest{})
	if diff := cmp.Diff(wantSettings, adminSettings); diff != "" {
		t.Errorf("SettingsRequest vs settingsRequest (-Go +schema):\n%s", diff)
	}
	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			v, ok := bodies[op.OperationID]
			if !ok {
				if op.RequestBody != nil {
					t.Errorf("%s %s (%s) has a body no handler reads", method, path, op.OperationID)
				}
				continue
			}
			seen[op.OperationID] = true
			if op.RequestBody == nil {
				t.Errorf("%s %s: no request body", method, path)
				continue
			}
			want := requestFields(v)
			content := op.RequestBody.Value.Content
			mediaTypes := []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
			if strings.HasPrefix(path, "/v2/admin/") {
				mediaTypes = mediaTypes[:1]
				if len(content) != 1 {
					t.Errorf("%s %s: the admin API takes JSON only, the document says %d media types", method, path, len(content))
				}
			}
			for _, mt := range mediaTypes {
				m := content.Get(mt)
				if m == nil {
					t.Errorf("%s %s: no %s body", method, path, mt)
					continue
				}
				got := schemaFields(m.Schema.Value)
				for _, r := range m.Schema.Value.Required {
					if _, ok := got[r]; !ok {
						t.Errorf("%s %s: required field %q is not a property", method, path, r)
					}
				}
				for k := range got {
					got[k] = field{Type: got[k].Type}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s %s body vs %T (-Go +schema):\n%s", method, path, mt, v, diff)
				}
			}
		}
	}
	for id := range bodies {
		if !seen[id] {
			t.Errorf("no operation %q in the document", id)
		}
	}
}

// TestOpenAPIClaimsPayload validates what POST /v2/auth/verify returns for both tenant cases against
// the AccessTokenClaims schema.
func TestOpenAPIClaimsPayload(t *testing.T) {
	doc := loadOpenAPI(t)
	schema := doc.Components.Schemas["AccessTokenClaims"].Value
	now := time.Unix(1_700_000_000, 0)
	for _, tenant := range []string{"", "acme"} {
		c := token.Claims{Issuer: "latch", Subject: "u1", SessionID: "s1", TenantID: tenant, ID: "j1", Email: "a@example.test",
			Audience: []string{"latch"}, AMR: []string{"pwd", "otp"}, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
		// Round-trip through JSON: the schema sees what the client sees.
		b, err := json.Marshal(claimsPayload(c))
		if err != nil {
			t.Fatal(err)
		}
		var payload any
		if err := json.Unmarshal(b, &payload); err != nil {
			t.Fatal(err)
		}
		if err := schema.VisitJSON(payload, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("tenant %q: payload %s does not match AccessTokenClaims: %v", tenant, b, err)
		}
	}
}
