package handlers

// Tokens returns the token store of a tenant; tests look into it.
func (s *Server) Tokens(tenant string) *TokenStore {
	if si := s.state.Load().site(tenant); si != nil {
		return si.tokens
	}
	return nil
}
