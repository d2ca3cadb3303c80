//! The one integration-test binary: drives the HTTP layer in-process on SQLite, or on
//! PostgreSQL when `TONGBAN_TEST_DATABASE_URL` is set (each test then gets its own database).

mod support;

mod api;
mod approval;
mod audit;
mod auth;
mod background;
mod calendar;
mod documents;
mod pki;
mod scopes;
mod separation;
mod sso;
mod strong_login;
mod takeover;
mod units_users;
mod window;
mod workflow;
