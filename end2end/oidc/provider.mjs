// A real OpenID provider for the single sign-on tests: panva's certified
// `oidc-provider`, with its development sign-in pages (any user name and
// password sign in) and one client, Envline. Each person's groups come from
// GROUPS below; a test changes them with `PUT /test/groups/NAME` (a JSON
// list) to check that Envline reads them again at each sign-in.
//
//   node oidc/provider.mjs            (OIDC_PORT and ENVLINE_URL to change)

import http from "node:http";
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT ?? 3108);
const envline = process.env.ENVLINE_URL ?? "http://127.0.0.1:3107";

const groups = new Map([
  ["sso-approver", ["prod-approvers", "everyone"]],
  ["sso-admin", ["envline-admins"]],
  ["sso-nobody", ["everyone"]],
]);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: "envline",
      client_secret: process.env.OIDC_CLIENT_SECRET ?? "e2e-client-secret-not-for-production",
      redirect_uris: [`${envline}/auth/oidc/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    groups: ["groups"],
  },
  pkce: { required: () => true },
  cookies: { keys: ["envline-e2e-provider-cookie-key"] },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, groups: groups.get(id) ?? [] };
      },
    };
  },
});
// Its development pages warn on every start; the tests know.
provider.on("server_error", (_ctx, error) => console.error("oidc-provider:", error));

const handle = provider.callback();
http
  .createServer((req, res) => {
    const match = req.url?.match(/^\/test\/groups\/([^/?]+)$/);
    if (match && req.method === "PUT") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        groups.set(decodeURIComponent(match[1]), JSON.parse(body));
        res.writeHead(204).end();
      });
      return;
    }
    handle(req, res);
  })
  .listen(port, "127.0.0.1", () => console.log(`oidc-provider on http://127.0.0.1:${port}`));
