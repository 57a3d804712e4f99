// A tester records a test result in the page (I3's evidence).

import { test, expect, api, card, dialog, freshQaHead, headOf, person, short, signIn } from "./fixtures";

test("a tester marks qa tested in the page", async ({ page }) => {
  // A new commit in qa that nobody has tested yet.
  const head = await freshQaHead("mark tested");
  expect(headOf("qa")).toBe(head);

  await signIn(page, "tester");
  const qa = card(page, "qa");
  await expect(qa).toHaveAttribute("data-head", head);
  await expect(qa).not.toContainText("tests passed");
  await page.locator("#act-verify-qa").click();

  await expect(page).toHaveURL(/\/\?verify=qa$/);
  const form = dialog(page);
  await expect(form).toContainText(short(head));
  await form.locator('input[name=status][value="passed"]').check();
  await form.locator("input[name=url]").fill("https://ci.example.com/runs/4711");
  await form.locator("input[name=summary]").fill("smoke and checkout suites green");
  await form.getByRole("button", { name: "Record result" }).click();

  await expect(form.getByRole("status")).toHaveText(`Recorded: ${short(head)} passed in qa.`);
  await expect(qa).toContainText("tests passed");

  const seen = await api("tester").environment("qa");
  expect(seen.head?.id).toBe(head);
  expect(seen.verification).toMatchObject({
    environment: "qa",
    commit: head,
    status: "passed",
    url: "https://ci.example.com/runs/4711",
    summary: "smoke and checkout suites green",
    recorded_by: person("tester").name,
  });
});
