// Single sign-on against a real OpenID provider (oidc-provider from npm,
// started by the Playwright set-up, see oidc/provider.mjs): the button on
// the sign-in page, the provider's own sign-in, the way back, roles from
// groups read again at each sign-in, and the refusals.

import type { Page } from "@playwright/test";
import { OIDC_PORT } from "../playwright.config";
import { BASE_URL, expect, expectNoSeriousViolations, openPage, person, test } from "./fixtures";

const PROVIDER = `http://127.0.0.1:${OIDC_PORT}`;

/** Sets the groups the provider gives `name` from now on. */
async function setGroups(name: string, groups: string[]): Promise<void> {
  const answer = await fetch(`${PROVIDER}/test/groups/${encodeURIComponent(name)}`, {
    method: "PUT",
    body: JSON.stringify(groups),
  });
  expect(answer.status).toBe(204);
}

/** Presses "Sign in with Test IdP" and signs in at the provider as `name`
 *  (unless the provider remembers this browser), accepting its consent. */
async function signInWithProvider(page: Page, name: string, next = "/"): Promise<void> {
  await openPage(page, `/login?next=${encodeURIComponent(next)}`);
  await page.getByRole("button", { name: "Sign in with Test IdP" }).click();
  await page.waitForURL((url) => url.origin === PROVIDER || url.origin === BASE_URL);
  if (new URL(page.url()).origin === PROVIDER && (await page.locator("input[name=login]").count()) > 0) {
    await page.locator("input[name=login]").fill(name);
    await page.locator("input[name=password]").fill("any password");
    await page.getByRole("button", { name: "Sign-in" }).click();
  }
  const consent = page.getByRole("button", { name: "Continue" });
  await page.waitForURL((url) => url.origin === BASE_URL || url.pathname.includes("/interaction/"));
  if (new URL(page.url()).origin === PROVIDER) await consent.click();
  await page.waitForURL((url) => url.origin === BASE_URL);
}

test("a person in a mapped group signs in with the provider and acts with the group's roles", async ({ page }) => {
  await setGroups("sso-approver", ["prod-approvers", "everyone"]);
  await signInWithProvider(page, "sso-approver", "/approvals");
  await expect(page).toHaveURL(`${BASE_URL}/approvals`);
  await expect(page.getByTestId("signed-in")).toHaveAttribute("data-user", "sso-approver");

  await openPage(page, "/account");
  await expect(page.getByTestId("account-user")).toHaveText("Signed in as sso-approver (approver:prod-*)");
  // No password here to change: the provider keeps it.
  await expect(page.getByTestId("password-at-provider")).toContainText("You sign in with Test IdP");
  await expect(page.locator("input[name=current]")).toHaveCount(0);
});

test("roles follow the provider's groups at each sign-in, and the change is audited", async ({ page }) => {
  await setGroups("sso-approver", ["prod-approvers"]);
  await signInWithProvider(page, "sso-approver");
  await openPage(page, "/account");
  await expect(page.getByTestId("account-user")).toHaveText("Signed in as sso-approver (approver:prod-*)");

  // The provider now says another group: the next sign-in brings it.
  await setGroups("sso-approver", ["envline-admins"]);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await signInWithProvider(page, "sso-approver");
  await openPage(page, "/account");
  await expect(page.getByTestId("account-user")).toHaveText("Signed in as sso-approver (admin)");

  // As an admin now, they can read the audit log of it.
  const audit = await page.request.get("/api/v1/audit?action=role_removed&limit=20");
  expect(audit.ok()).toBeTruthy();
  const events = (await audit.json()).events as { actor: string; reason: string }[];
  expect(
    events.some((e) => e.actor === "envline" && e.reason.includes("sso-approver") && e.reason.includes("approver:prod-*")),
  ).toBeTruthy();

  // Out of every mapped group: not signed in, and no role left behind.
  await setGroups("sso-approver", ["everyone"]);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await signInWithProvider(page, "sso-approver");
  await expect(page).toHaveURL(/\/login\?sso_error=no_role$/);
  const answer = await fetch(`${BASE_URL}/api/v1/users`, {
    headers: { Authorization: `Bearer ${person("admin").token}` },
  });
  const { users } = (await answer.json()) as { users: { name: string; roles: string[] }[] };
  expect(users.find((u) => u.name === "sso-approver")?.roles).toEqual([]);
  await setGroups("sso-approver", ["prod-approvers", "everyone"]);
});

test("someone whose groups give no role is not signed in, and is told why", async ({ page }) => {
  await signInWithProvider(page, "sso-nobody");
  await expect(page).toHaveURL(/\/login\?sso_error=no_role$/);
  await expect(page.getByTestId("sso-error")).toContainText("None of your groups at the identity provider gives a role");
  await expect(page.getByTestId("signed-in")).toHaveCount(0);
  await expectNoSeriousViolations(page, "/login with a single sign-on error");
});

test("an answer that this browser did not ask for is refused", async ({ page }) => {
  await page.goto("/auth/oidc/callback?code=stolen&state=someone-elses");
  await expect(page).toHaveURL(/\/login\?sso_error=other_browser$/);
  await expect(page.getByTestId("sso-error")).toContainText("started in another browser");

  // Started here but answered with a state this browser does not hold.
  await page.getByRole("button", { name: "Sign in with Test IdP" }).click();
  await page.waitForURL((url) => url.origin === PROVIDER);
  await page.goto("/auth/oidc/callback?code=forged&state=forged");
  await expect(page).toHaveURL(/\/login\?sso_error=other_browser$/);
});

test("a person who cancels at the provider comes back not signed in", async ({ page }) => {
  await openPage(page, "/login");
  await page.getByRole("button", { name: "Sign in with Test IdP" }).click();
  await page.waitForURL((url) => url.origin === PROVIDER);
  await page.getByRole("link", { name: "[ Cancel ]" }).click();
  await expect(page).toHaveURL(/\/login\?sso_error=refused$/);
  await expect(page.getByTestId("sso-error")).toContainText("did not sign you in");
});
