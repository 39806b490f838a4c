// A real OpenID provider for the workload identity tests: npm's oidc-provider (OpenID
// certified), issuing RS256 JWTs through the client-credentials grant. Each client stands
// for one CI job: its token carries that job's claims (GitLab's `id_tokens` claims, all
// strings), for the audience asked for with `resource`.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"port": 0, "key_ids": ["k1", ...], "clients": [{"client_id", "client_secret",
// "claims": {...}}], "ttl": 300, "keys_file": PATH}. One RSA key is generated per key id; the
// first signs. Keys already in keys_file (a previous run's) follow the new ones, and all are
// written back there: a restart with a new key id is a key rotation. Prints "listening <issuer>"
// once it accepts connections; each stage before that is named on stderr, so that a start that
// stalls (the test gives it 30 s) says where.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const stage = (what) => process.stderr.write(`provider.mjs: ${what}\n`);
stage('oidc-provider loaded');
const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;
stage(`bound ${issuer}; generating ${config.key_ids.length} RSA keys`);
const generated = config.key_ids.map((kid) => ({
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid,
  use: 'sig',
  alg: 'RS256',
}));
const kept = config.keys_file && existsSync(config.keys_file)
  ? JSON.parse(readFileSync(config.keys_file, 'utf8'))
  : [];
const keys = [...generated, ...kept];
if (config.keys_file) writeFileSync(config.keys_file, JSON.stringify(keys));
stage('keys ready; constructing the provider');
const claimsOf = new Map(config.clients.map((client) => [client.client_id, client.claims]));

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  })),
  jwks: { keys },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      getResourceServerInfo: (ctx, resource) => ({
        scope: '',
        audience: resource,
        accessTokenTTL: config.ttl ?? 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => claimsOf.get(token.clientId) ?? {},
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
