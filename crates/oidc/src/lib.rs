//! OpenID Connect provider (统一身份认证、单点登录).
