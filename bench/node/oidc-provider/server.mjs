// Peer OpenID Connect server for the tongban side-by-side benchmark: panva/oidc-provider
// configured like tongban's staff realm for the `data-exchange` client (client credentials,
// ES256-signed JWT access tokens, 600 s TTL).
//
// Usage: node server.mjs PORT
// Prints exactly one line `ready http://127.0.0.1:PORT/realms/staff` to stdout once listening.
// oidc-provider's own start-up notices (in-memory adapter, Node.js runtime) go to stderr.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import { Provider } from 'oidc-provider';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: node server.mjs PORT\n');
  process.exit(2);
}

const PREFIX = '/realms/staff';
const ORIGIN = `http://127.0.0.1:${port}`;
const ISSUER = `${ORIGIN}${PREFIX}`;
// The single resource server every client_credentials token is issued for; its audience is the
// client itself, as in tongban (aud = client_id).
const RESOURCE = `${ISSUER}/resource`;
const SCOPE = 'unit roles';
const ACCESS_TTL = 600;

function signingKey(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  return { ...jwk, use: 'sig', alg, kid };
}

// ES256 first: tongban signs access tokens with ES256 and also publishes an RS256 key.
const es256 = signingKey('ec', { namedCurve: 'P-256' }, 'ES256');
const rs256 = signingKey('rsa', { modulusLength: 2048 }, 'RS256');

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: 'data-exchange',
    client_secret: 'demo-exchange-secret-change-me',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPE,
  }],
  clientDefaults: {
    id_token_signed_response_alg: 'ES256',
  },
  jwks: { keys: [es256, rs256] },
  // tongban's KNOWN_SCOPES: a known scope the client may not use answers invalid_scope.
  scopes: ['openid', 'profile', 'email', 'phone', 'unit', 'roles', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: SCOPE,
          audience: client.clientId,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  // Same endpoint paths as tongban's discovery document.
  routes: {
    authorization: '/authorize',
    end_session: '/logout',
    introspection: '/introspect',
    jwks: '/jwks',
    revocation: '/revoke',
    token: '/token',
    userinfo: '/userinfo',
  },
  ttl: {
    AccessToken: ACCESS_TTL,
    ClientCredentials: ACCESS_TTL,
  },
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
  },
  // No browser clients here; answering CORS preflights is not part of the benchmark.
  clientBasedCORS: () => false,
});

// Mount under /realms/staff the way connect/express do: strip the prefix from req.url and keep
// the full path in req.originalUrl, from which oidc-provider derives the mount path.
const callback = provider.callback();
const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === PREFIX || url.startsWith(`${PREFIX}/`) || url.startsWith(`${PREFIX}?`)) {
    req.originalUrl = url;
    req.url = url.slice(PREFIX.length) || '/';
    if (req.url.startsWith('?')) req.url = `/${req.url}`;
    callback(req, res);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"error":"not_found"}');
});

server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${ISSUER}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
