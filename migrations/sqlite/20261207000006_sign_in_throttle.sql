-- Sign-in throttling that every replica shares (a guesser spreading
-- attempts over the replicas behind a load balancer gains nothing): runs
-- of wrong passwords per account and address, and attempts per address
-- per minute.

CREATE TABLE sign_in_failures (
    user_name  TEXT NOT NULL,
    address    TEXT NOT NULL,
    failures   INTEGER NOT NULL,   -- wrong passwords in a row
    not_before TEXT NOT NULL,      -- the next attempt waits until then
    last_at    TEXT NOT NULL,
    PRIMARY KEY (user_name, address)
);

CREATE TABLE sign_in_attempts (
    address  TEXT NOT NULL,
    minute   TEXT NOT NULL,        -- the minute's start, RFC 3339
    attempts INTEGER NOT NULL,
    PRIMARY KEY (address, minute)
);
