package auth

import "context"

// NewAccount is an account an operator creates: the operator vouches for the address, so it counts
// as verified and no code is sent.
type NewAccount struct {
	Email    string
	Password string
	TenantID string
	Actor    string // the command that made it, for the event log
}

// CreateAccount creates an active, verified account under the same email and password rules as
// registration.
func (s *Service) CreateAccount(ctx context.Context, in NewAccount) (User, error) {
	return s.CreateUser(ctx, CommandLine(in.Actor), NewUser{TenantID: in.TenantID, Email: in.Email, Password: in.Password, EmailVerified: true})
}
