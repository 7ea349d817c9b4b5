-- Schema for the __entity__ application.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE __entities__ (
    id         BIGSERIAL PRIMARY KEY,
    owner_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    details    TEXT NOT NULL DEFAULT '',
    done       BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE __entity___shares (
    __entity___id BIGINT NOT NULL REFERENCES __entities__ (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    can_edit      BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (__entity___id, user_id)
);

CREATE INDEX __entities___owner_idx ON __entities__ (owner_id);
