// A real, certified OpenID Provider (panva/oidc-provider) for the console's single sign-on
// tests, on 127.0.0.1. Its own login and consent pages (devInteractions) take any login name;
// the accounts below give each name its groups.
//
//   node provider.mjs <port> <client_id> <client_secret> <redirect_uri>
//
// Prints `listening <issuer>` once it answers. One test-only door, `POST /__faults/<fault>`,
// makes the next token response carry an ID token the provider signed with its own key but that
// a relying party must refuse: `wrong_audience` (minted for another client) or `expired` (its
// lifetime over before it was issued, as from a provider whose clock is behind). `POST
// /__faults/none` undoes it. Nothing else is changed: discovery, keys, codes, PKCE and the
// refusal of a code used twice are the provider's own.
import { Provider } from 'oidc-provider';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: node provider.mjs <port> <client_id> <client_secret> <redirect_uri>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Who may sign in, and their groups (the claim the daemon maps to a tenant and a role).
const ACCOUNTS = {
  'ana@team-a.example': { name: 'Ana', groups: ['team-a-operators', 'everyone'] },
  'bo@team-b.example': { name: 'Bo', groups: ['team-b-viewers'] },
  'cy@platform.example': { name: 'Cy', groups: ['platform-admins'] },
  'dee@marketing.example': { name: 'Dee', groups: ['marketing', 'everyone'] },
};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
  // The claims of the scopes granted go into the ID token (as Okta, Entra ID and Keycloak's
  // group mappers put groups there), not only into userinfo.
  conformIdTokenClaims: false,
  findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    return {
      accountId: id,
      async claims() {
        return account
          ? { sub: id, name: account.name, email: id, groups: account.groups }
          : { sub: id, email: id, groups: [] };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: { IdToken: 300, AuthorizationCode: 60, Session: 3600, Interaction: 600, Grant: 3600 },
  cookies: { keys: ['gs-test-cookie-key'] },
});

let fault = 'none';
provider.use(async (ctx, next) => {
  const m = ctx.method === 'POST' && /^\/__faults\/([a-z_]+)$/.exec(ctx.path);
  if (m) {
    fault = m[1];
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path !== '/token' || fault === 'none' || ctx.status !== 200 || !ctx.body?.id_token) {
    return;
  }
  const claims = decodeJwt(ctx.body.id_token);
  const { kid } = decodeProtectedHeader(ctx.body.id_token);
  if (fault === 'wrong_audience') {
    claims.aud = 'another-application';
  } else if (fault === 'expired') {
    claims.iat -= 3600;
    claims.exp = claims.iat + 300;
  }
  ctx.body = {
    ...ctx.body,
    id_token: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey),
  };
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
