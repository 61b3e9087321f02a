"""Where an investor stands with KYC, as the eligibility engine and the pages read it.
Its own module so that the selector that works it out (`selectors.kyc_standing_for`)
and the engine that judges it (`eligibility`) depend on it, not on each other."""


class KycState:
    NONE = "none"  # never applied
    PENDING = "pending"  # draft, submitted or waiting for information, never approved
    APPROVED = "approved"
    EXPIRED = "expired"  # was approved, validity has lapsed: exit-only
    REJECTED = "rejected"
