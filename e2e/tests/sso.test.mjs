// Single sign-on as an independent relying party sees it: panva's openid-client (a certified
// OpenID Connect RP library) discovers the staff realm, runs the code flow with PKCE, state and
// nonce for the legacy OA system, reads userinfo, rotates refresh tokens (and trips reuse
// detection), uses client credentials with introspection and revocation, and logs out.
// The staff member logs in over plain HTTP (no browser); nothing listens on the redirect URIs,
// so redirects are captured from the Location header instead of followed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { startServer } from './harness.mjs';

const LEGACY_OA = { id: 'legacy-oa', secret: 'demo-legacy-oa-secret-change-me' };
const DATA_EXCHANGE = { id: 'data-exchange', secret: 'demo-exchange-secret-change-me' };
const REDIRECT_URI = 'http://127.0.0.1:9101/callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:9101/';
const DEMO_PASSWORD = 'Jiahe@2026'; // crates/identity/src/demo.rs

let server;
let issuer;

before(async () => {
  server = await startServer();
  issuer = new URL(`${server.base}/realms/staff`);
});

after(async () => {
  await server?.stop();
});

// The plain HTTP server needs the library's opt-in for insecure requests.
function discover(id, secret, auth) {
  return client.discovery(issuer, id, secret, auth, { execute: [client.allowInsecureRequests] });
}

// Name=value pairs from a response's Set-Cookie headers.
function cookies(res) {
  return Object.fromEntries(res.headers.getSetCookie().map((c) => c.split(';')[0].split(/=(.*)/s).slice(0, 2)));
}

// Logs a staff member in with the form and returns the session cookie header.
async function staffLogin(username) {
  const page = await fetch(`${server.base}/login`);
  const csrfCookie = cookies(page).tb_csrf;
  const csrf = (await page.text()).match(/name="_csrf" value="([^"]+)"/)[1];
  assert.ok(csrfCookie && csrf);
  const res = await fetch(`${server.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tb_csrf=${csrfCookie}` },
    body: new URLSearchParams({ _csrf: csrf, username, password: DEMO_PASSWORD }),
  });
  assert.equal(res.status, 303, `log-in as ${username}`);
  assert.equal(res.headers.get('location'), '/workbench');
  const session = cookies(res).tb_session;
  assert.ok(session, 'tb_session cookie set');
  return `tb_session=${session}`;
}

// Starts an authorization request in the signed-in browser; returns the callback URL it lands on.
async function authorize(cookie, url) {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie } });
  assert.equal(res.status, 303, `authorize answered ${res.status}: ${await res.text()}`);
  const location = new URL(res.headers.get('location'), url);
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
  return location;
}

// Builds a fresh code-flow request with PKCE, state and nonce.
async function codeRequest(config, scope) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url, verifier, state, nonce };
}

// at_hash: the left half of the SHA-256 of the access token, base64url-encoded.
function atHash(accessToken) {
  return createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');
}

// Asserts that a promise rejects with an OAuth error response carrying the given error code.
async function rejectsWithOAuthError(promise, error, message) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `${message}: ${err}`);
    assert.equal(err.error, error, `${message}: ${err.error} ${err.error_description ?? ''}`);
    assert.equal(err.status, 400, message);
    return true;
  });
}

test('legacy OA signs a staff member in, refreshes, reads userinfo and logs out', async () => {
  // Discovery: the document validates against the issuer identifier it was fetched for.
  const config = await discover(LEGACY_OA.id, LEGACY_OA.secret, client.ClientSecretBasic(LEGACY_OA.secret));
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, issuer.href);
  assert.equal(meta.authorization_endpoint, `${issuer.href}/authorize`);
  assert.equal(meta.token_endpoint, `${issuer.href}/token`);
  assert.equal(meta.jwks_uri, `${issuer.href}/jwks`);
  assert.equal(meta.end_session_endpoint, `${issuer.href}/logout`);
  assert.ok(meta.supportsPKCE('S256'));
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
  assert.ok(meta.id_token_signing_alg_values_supported.includes('ES256'));

  // Code flow with PKCE, state and nonce. authorizationCodeGrant checks the iss and state of the
  // authorization response and the ID token's signature (from the JWKS), iss, aud, azp, exp, nonce.
  const cookie = await staffLogin('zhoujun');
  const req = await codeRequest(config, 'openid profile email unit roles offline_access');
  const callback = await authorize(cookie, req.url);
  assert.equal(callback.searchParams.get('state'), req.state);
  assert.equal(callback.searchParams.get('iss'), issuer.href);
  assert.ok(callback.searchParams.get('code'));
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: req.verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
  assert.ok(tokens.expiresIn() > 0);
  const idClaims = tokens.claims();
  assert.equal(idClaims.iss, issuer.href);
  assert.equal(idClaims.nonce, req.nonce);
  assert.ok([idClaims.aud].flat().includes(LEGACY_OA.id));
  assert.ok(idClaims.sub);
  assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, 'ES256');
  // The library leaves at_hash alone in the code flow, so check it here (OIDC Core 3.2.2.9).
  assert.equal(idClaims.at_hash, atHash(tokens.access_token));

  // UserInfo: same subject, with the profile and the unit scope's claim.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
  assert.equal(userinfo.sub, idClaims.sub);
  assert.equal(userinfo.name, '周军');
  assert.equal(userinfo.preferred_username, 'zhoujun');
  assert.equal(userinfo.unit, '自然资源局');

  // Refresh: the refresh token rotates and a new ID token comes back, which keeps iss, sub, aud,
  // azp and auth_time of the original authentication (OIDC Core 12.2).
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'refresh token rotated');
  assert.ok(refreshed.id_token);
  assert.notEqual(refreshed.id_token, tokens.id_token);
  const refreshedClaims = refreshed.claims();
  for (const claim of ['iss', 'sub', 'aud', 'azp', 'auth_time']) {
    assert.deepEqual(refreshedClaims[claim], idClaims[claim], `refreshed ID token ${claim}`);
  }
  assert.ok(refreshedClaims.iat >= idClaims.iat);
  assert.equal(refreshedClaims.at_hash, atHash(refreshed.access_token));
  // Replaying the old refresh token fails, and reuse detection revokes the whole family,
  // so the newest refresh token stops working as well.
  await rejectsWithOAuthError(client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant', 'old refresh token');
  await rejectsWithOAuthError(client.refreshTokenGrant(config, refreshed.refresh_token), 'invalid_grant', 'refresh token after reuse');

  // A code redeemed with the wrong PKCE verifier is refused (the session is still signed in).
  const again = await codeRequest(config, 'openid profile');
  const callback2 = await authorize(cookie, again.url);
  await rejectsWithOAuthError(
    client.authorizationCodeGrant(config, callback2, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: again.state,
      expectedNonce: again.nonce,
    }),
    'invalid_grant',
    'wrong PKCE verifier',
  );

  // RP-initiated logout with id_token_hint returns to the registered post-logout URI with
  // the state, and ends the tongban session.
  assert.equal((await fetch(`${server.base}/workbench`, { redirect: 'manual', headers: { cookie } })).status, 200);
  const logoutState = client.randomState();
  const logoutUrl = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state: logoutState,
  });
  const logout = await fetch(logoutUrl, { redirect: 'manual', headers: { cookie } });
  assert.equal(logout.status, 303, `logout answered ${logout.status}: ${await logout.text()}`);
  assert.equal(logout.headers.get('location'), `${POST_LOGOUT_URI}?state=${logoutState}`);
  const afterLogout = await fetch(`${server.base}/workbench`, { redirect: 'manual', headers: { cookie } });
  assert.ok([302, 303].includes(afterLogout.status), `workbench after logout answered ${afterLogout.status}`);
  assert.match(afterLogout.headers.get('location'), /\/login/);
});

test('data exchange uses client credentials, introspection and revocation', async () => {
  // A service client: its token is active until revoked. Uses client_secret_post this time.
  const service = await discover(DATA_EXCHANGE.id, DATA_EXCHANGE.secret, client.ClientSecretPost(DATA_EXCHANGE.secret));
  const tokens = await client.clientCredentialsGrant(service, { scope: 'unit roles' });
  assert.ok(tokens.access_token);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(tokens.id_token, undefined);

  const active = await client.tokenIntrospection(service, tokens.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, DATA_EXCHANGE.id);
  assert.deepEqual(active.scope.split(' ').sort(), ['roles', 'unit']);
  assert.ok(active.exp > Date.now() / 1000);

  await client.tokenRevocation(service, tokens.access_token);
  const revoked = await client.tokenIntrospection(service, tokens.access_token);
  assert.equal(revoked.active, false);
  assert.deepEqual(Object.keys(revoked), ['active'], 'an inactive token reveals nothing else');

  // A wrong secret: 401 with a WWW-Authenticate challenge (RFC 6749 5.2), which the library
  // surfaces as a challenge error; the body still says invalid_client.
  const impostor = await discover(DATA_EXCHANGE.id, 'not-the-secret', client.ClientSecretBasic('not-the-secret'));
  const err = await client.clientCredentialsGrant(impostor, { scope: 'unit' }).then(() => null, (e) => e);
  assert.ok(err instanceof client.WWWAuthenticateChallengeError, `wrong secret: ${err}`);
  assert.equal(err.status, 401);
  assert.equal(err.cause[0].scheme, 'basic');
  assert.equal((await err.response.json()).error, 'invalid_client');
});
