-- Delegated administration (分级管理): roles the security administrator marks assignable may be
-- granted by unit administrators to accounts in their own scope.
ALTER TABLE roles ADD COLUMN assignable BIGINT NOT NULL DEFAULT 0;
