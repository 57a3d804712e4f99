// The Insights page: a release engineer reads qa's delivery figures over a
// window, follows a week's bar to the deployments behind it, and the page
// reads the same without JavaScript.

import { test, expect, api, expectNoSeriousViolations, freshQaHead, openPage } from "./fixtures";

test("a release engineer reads an environment's figures and follows a week to its deployments", async ({ page }) => {
  await freshQaHead("insights");
  const figures = await api("promoter").insights("qa", "7d");
  expect(figures.deployments).toBeGreaterThan(0);

  await openPage(page, "/insights");
  await page.getByLabel("Environment").selectOption("qa");
  await page.getByLabel("Window").selectOption("7d");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/environment=qa/);
  const qa = page.getByTestId("insights-qa");
  await expect(qa).toBeVisible();
  await expect(page.locator("[data-testid^=insights-]")).toHaveCount(1);
  await expect(qa.getByText(`${figures.deployments} deployments`)).toBeVisible();
  for (const figure of ["Deployments per week", "Change failure rate", "Lead time (median)", "Time to restore (median)"]) {
    await expect(qa.getByRole("term").filter({ hasText: figure })).toBeVisible();
  }
  // The numbers behind a chart, then a week's bar to the audit log.
  const deployments = qa.locator("figure").first();
  await deployments.getByText("Numbers").click();
  await expect(deployments.locator("tbody tr").first()).toBeVisible();
  await expectNoSeriousViolations(page, "the Insights page");
  const bar = deployments.locator("svg a").last();
  await expect(bar).toHaveAttribute("aria-label", /week of \d{4}-\d{2}-\d{2}: [1-9]/);
  await bar.click();
  await expect(page).toHaveURL(/\/audit\?environment=qa&action=promote&since=/);
  await expect(page.getByTestId("audit").locator("tbody tr").first()).toBeVisible();
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the figures and charts render on the server", async ({ page }) => {
    await page.goto("/insights?since=30d");
    await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
    await expect(page.getByTestId("insights-qa")).toBeVisible();
    await expect(page.getByTestId("insights-prod-eu")).toBeVisible();
    await expect(page.getByTestId("insights-qa").locator("svg").first()).toBeVisible();
  });
});
