// The Account page: a person changes their own password with the keyboard
// alone; their session in another browser ends (and its live page is told),
// this one stays signed in. An approval of someone who lost the role is shown
// as withdrawn on the Approvals page.

import {
  test,
  expect,
  Api,
  PASSWORD,
  api,
  envline,
  expectNoSeriousViolations,
  newContext,
  openPage,
  readyForProd,
  signIn,
} from "./fixtures";

/** Signs `name` in through the sign-in page with `password`. */
async function signInAs(page: import("@playwright/test").Page, name: string, password: string): Promise<void> {
  await openPage(page, "/login");
  await page.locator("input[name=user]").fill(name);
  await page.locator("input[name=password]").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByTestId("signed-in")).toHaveAttribute("data-user", name);
}

test("a person changes their password with the keyboard; their other session ends", async ({ browser }) => {
  const name = `e2e-account-${Date.now()}`;
  envline(["user", "add", name, "--role", "promoter"]);
  const laptop = await newContext(browser);
  const phone = await newContext(browser);
  try {
    const page = await laptop.newPage();
    const other = await phone.newPage();
    await signInAs(page, name, PASSWORD);
    await signInAs(other, name, PASSWORD);

    // The header's name opens the Account page.
    await page.getByTestId("signed-in").getByRole("link", { name }).click();
    await expect(page).toHaveURL(/\/account$/);
    await expect(page.getByTestId("account-user")).toContainText(`Signed in as ${name}`);
    await expectNoSeriousViolations(page, "the account page");

    // Keyboard only: type, Tab to the next field, Enter submits.
    await page.getByLabel("Current password").focus();
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Tab");
    await page.keyboard.type("a-new-long-password");
    await page.keyboard.press("Tab");
    await page.keyboard.type("a-new-long-password");
    await page.keyboard.press("Enter");
    await expect(page.getByTestId("password-changed")).toContainText("1 other session ended");

    // The other browser is signed out: its next page asks to sign in.
    await openPage(other, "/");
    await expect(other.getByText("Not signed in")).toBeVisible();
    // This one stays.
    await openPage(page, "/account");
    await expect(page.getByTestId("signed-in")).toHaveAttribute("data-user", name);
    // The old password no longer works; the new one does.
    await openPage(other, "/login");
    await other.locator("input[name=user]").fill(name);
    await other.locator("input[name=password]").fill(PASSWORD);
    await other.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(other.locator("[data-error-code=unauthenticated]")).toBeVisible();
    await signInAs(other, name, "a-new-long-password");
  } finally {
    await laptop.close();
    await phone.close();
  }
});

test("an approval of someone who lost the role shows as withdrawn", async ({ page }) => {
  const name = `e2e-leaver-${Date.now()}`;
  envline(["user", "add", name, "--role", "approver:prod-*"]);
  const leaver = new Api({
    key: "approverOne",
    name,
    roles: ["approver:prod-*"],
    token: envline(["token", "create", "--user", name, "--label", "e2e"]),
  });
  await readyForProd("withdrawn approval", ["staging-asia"]);
  const request = await api("requester").promote("prod-asia", "asia release, an approver leaves");
  expect(request.state).toBe("awaiting_approval");
  await leaver.decide(request.id, "approve");
  // An admin takes the role away: the approval no longer counts.
  envline(["user", "role", name, "--remove", "approver:prod-*"]);

  await signIn(page, "approverTwo", "/approvals");
  const card = page.locator(`article[data-request="${request.id}"]`);
  const withdrawn = card.locator(`li[data-approver="${name}"]`);
  await expect(withdrawn).toHaveAttribute("data-withdrawn", "true");
  await expect(withdrawn).toContainText(`${name} approval withdrawn`);
  await expect(withdrawn).toContainText(`removed ${name}'s role approver:prod-*`);
  await expect(card.locator('li[data-gate="approvals"]')).toContainText("0 of 2 approvals");
  await expect(card.locator('li[data-gate="approvals"]')).toContainText("2 more needed");
  await expectNoSeriousViolations(page, "a request with a withdrawn approval");

  // Two approvers who hold the role finish it.
  await card.locator("button[value=approve]").click();
  await expect(page.getByTestId("decision-result")).toContainText("1 of 2 approvals");
  const done = await api("approverOne").decide(request.id, "approve");
  expect(done.state).toBe("done");
});
