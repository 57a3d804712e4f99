import { defineConfig } from "@playwright/test";

// The server runs the release build on a fresh demo in .envline-test/e2e,
// refreshing from its remote every second.
export const PORT = 3107;
export const DEMO = "../.envline-test/e2e";
// A real OpenID provider (oidc-provider from npm) for single sign-on.
export const OIDC_PORT = 3108;
export const OIDC_CLIENT_SECRET = "e2e-client-secret-not-for-production";

export default defineConfig({
  testDir: "./tests",
  // Creates the accounts and tokens the tests act as (after the server started).
  globalSetup: "./global-setup.ts",
  timeout: 60_000,
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: [
    {
      command: "node oidc/provider.mjs",
      url: `http://127.0.0.1:${OIDC_PORT}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 30_000,
      env: {
        OIDC_PORT: String(OIDC_PORT),
        OIDC_CLIENT_SECRET,
        ENVLINE_URL: `http://127.0.0.1:${PORT}`,
      },
    },
    {
      command: "./target/release/envline demo --dir .envline-test/e2e",
      cwd: "..",
      url: `http://127.0.0.1:${PORT}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      env: {
        ENVLINE_SERVER_LISTEN: `127.0.0.1:${PORT}`,
        ENVLINE_REPOSITORY_REFRESH_SECONDS: "1",
        ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE: "false",
        ENVLINE_AUTH_OIDC_ISSUER: `http://127.0.0.1:${OIDC_PORT}`,
        ENVLINE_AUTH_OIDC_CLIENT_ID: "envline",
        ENVLINE_AUTH_OIDC_CLIENT_SECRET: OIDC_CLIENT_SECRET,
        ENVLINE_AUTH_OIDC_NAME: "Test IdP",
        ENVLINE_AUTH_OIDC_SCOPES: "groups",
        ENVLINE_AUTH_OIDC_ROLES: '{ "prod-approvers" = ["approver:prod-*"], "envline-admins" = ["admin"] }',
      },
    },
  ],
});
