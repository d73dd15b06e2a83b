package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/auth"
)

const maxBody = 64 << 10

// decode reads a JSON or form body into dst, a pointer to a struct of string and bool fields tagged
// with their camelCase json names. Unknown fields are ignored; a field of the wrong type is a 400
// naming the field; an empty body is an empty object, so missing fields are reported one by one.
func decode(c echo.Context, dst any) error {
	if err := refuseFieldsInURL(c, dst); err != nil {
		return err
	}
	req := c.Request()
	ct := req.Header.Get(echo.HeaderContentType)
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "" || mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json"):
		return decodeJSON(req.Body, dst)
	case mt == echo.MIMEApplicationForm || mt == echo.MIMEMultipartForm:
		return decodeForm(c, dst)
	default:
		return &httpError{code: codeUnsupportedMedia, detail: "Send application/json, application/x-www-form-urlencoded or multipart/form-data."}
	}
}

// Decode is decode for the surfaces, so every surface reads bodies by the same rules.
func Decode(c echo.Context, dst any) error { return decode(c, dst) }

func decodeJSON(body io.Reader, dst any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		return bodyReadError(err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	err = json.Unmarshal(raw, dst)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &auth.Error{Code: auth.CodeValidation, Detail: "The request has invalid fields.",
			Fields: []auth.FieldError{{Field: typeErr.Field, Message: "must be a " + jsonKind(typeErr.Type)}}}
	case errors.As(err, &typeErr):
		return &httpError{code: codeMalformed, detail: "The body must be a JSON object."}
	default:
		return &httpError{code: codeMalformed, detail: "The body is not valid JSON."}
	}
}

func bodyReadError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return &httpError{code: codeTooLarge, detail: "The request body exceeds 64 KiB."}
	}
	return &httpError{code: codeMalformed, detail: "The request body could not be read."}
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map:
		return "JSON object"
	case reflect.Slice, reflect.Array:
		return "JSON array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.Kind().String()
}

// refuseFieldsInURL refuses a request whose query string carries any field of the body: passwords,
// codes and tokens in a URL end up in access logs, proxies and browser history. Such a field is never
// read from there.
func refuseFieldsInURL(c echo.Context, dst any) error {
	query := c.Request().URL.Query()
	if len(query) == 0 {
		return nil
	}
	var fields auth.Validation
	for _, name := range fieldNames(dst) {
		if query.Has(name) {
			fields.Add(name, "must be sent in the request body, never in the URL")
		}
	}
	return fields.Err()
}

// fieldNames lists the json names of a request struct's fields.
func fieldNames(dst any) []string {
	t := reflect.TypeOf(dst).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func decodeForm(c echo.Context, dst any) error {
	req := c.Request()
	var err error
	if strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		err = req.ParseMultipartForm(maxBody)
	} else {
		err = req.ParseForm()
	}
	if err != nil {
		return bodyReadError(err)
	}
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	var fields auth.Validation
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		// PostForm: the body only. Form would mix in the query string.
		val, ok := req.PostForm[name]
		if !ok || len(val) == 0 {
			continue
		}
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(val[0])
		case reflect.Bool:
			b, err := strconv.ParseBool(val[0])
			if err != nil {
				fields.Add(name, "must be a boolean")
				continue
			}
			f.SetBool(b)
		}
	}
	return fields.Err()
}
