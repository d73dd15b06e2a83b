package graphql

// The payload types of schema.graphql, bound by gqlgen.yml. A `user` is loaded only when the query
// asks for it, so each carries the id it would load.

type User struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
	IsActive      bool   `json:"isActive"`
	TenantID      string `json:"tenantId"`
	Role          string `json:"role"`
}

type AccountError struct {
	Field   *string          `json:"field"`
	Message *string          `json:"message"`
	Code    AccountErrorCode `json:"code"`
}

type CreateToken struct {
	Token        *string        `json:"token"`
	RefreshToken *string        `json:"refreshToken"`
	CsrfToken    *string        `json:"csrfToken"`
	Errors       []AccountError `json:"errors"`
	userID       string
}

type RefreshToken struct {
	Token        *string        `json:"token"`
	RefreshToken *string        `json:"refreshToken"`
	Payload      map[string]any `json:"payload"`
	Errors       []AccountError `json:"errors"`
	userID       string
}

type VerifyToken struct {
	IsValid bool           `json:"isValid"`
	Payload map[string]any `json:"payload"`
	Errors  []AccountError `json:"errors"`
	userID  string
}

type DeactivateAllUserTokens struct {
	Errors []AccountError `json:"errors"`
}

type ObtainJSONWebToken struct {
	Payload          map[string]any `json:"payload"`
	RefreshExpiresIn int64          `json:"refreshExpiresIn"`
	Token            string         `json:"token"`
	RefreshToken     string         `json:"refreshToken"`
}

type Verify struct {
	Payload map[string]any `json:"payload"`
}

type Refresh struct {
	Payload          map[string]any `json:"payload"`
	RefreshExpiresIn int64          `json:"refreshExpiresIn"`
	Token            string         `json:"token"`
	RefreshToken     string         `json:"refreshToken"`
}

type Revoke struct {
	Revoked int64 `json:"revoked"`
}
