-- Sign-in throttling that every replica shares (a guesser spreading
-- attempts over the replicas behind a load balancer gains nothing): runs
-- of wrong passwords per account and address, and attempts per address
-- per minute.

CREATE TABLE sign_in_failures (
    user_name  TEXT COLLATE "C" NOT NULL,
    address    TEXT COLLATE "C" NOT NULL,
    failures   BIGINT NOT NULL,   -- wrong passwords in a row
    not_before TEXT COLLATE "C" NOT NULL,      -- the next attempt waits until then
    last_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_name, address)
);

CREATE TABLE sign_in_attempts (
    address  TEXT COLLATE "C" NOT NULL,
    minute   TEXT COLLATE "C" NOT NULL,        -- the minute's start, RFC 3339
    attempts BIGINT NOT NULL,
    PRIMARY KEY (address, minute)
);
