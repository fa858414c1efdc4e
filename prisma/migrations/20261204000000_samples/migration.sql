-- CreateEnum
CREATE TYPE "SampleKind" AS ENUM ('small', 'large');

-- CreateTable
CREATE TABLE "samples" (
    "id" SERIAL NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "flag" BOOLEAN NOT NULL DEFAULT false,
    "ratio" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "real" REAL NOT NULL DEFAULT 0,
    "small" SMALLINT NOT NULL DEFAULT 0,
    "big" BIGINT NOT NULL DEFAULT 0,
    "amount" DECIMAL(30,10) NOT NULL DEFAULT 0,
    "price" MONEY NOT NULL DEFAULT 0,
    "kind" "SampleKind" NOT NULL DEFAULT 'small',
    "uid" UUID,
    "data" JSONB,
    "doc" JSON,
    "at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "at_tz" TIMESTAMPTZ(6),
    "day" DATE,
    "clock" TIME(6),
    "clock_tz" TIMETZ(6),
    "bytes" BYTEA,

    CONSTRAINT "samples_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sample_lists" (
    "id" SERIAL NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "tags" TEXT[],
    "amounts" DECIMAL(30,10)[],
    "moments" TIMESTAMP(3)[],
    "kinds" "SampleKind"[],

    CONSTRAINT "sample_lists_pkey" PRIMARY KEY ("id")
);
