// Creates the people the tests act as, once per run: accounts with a
// password (for the pages) and an API token each (for setting things up),
// through the envline CLI, which shares the running server's database.
// Playwright starts the web server (and with it the demo) before this runs.

import { createPeople } from "./tests/fixtures";

export default function globalSetup(): void {
  createPeople();
}
