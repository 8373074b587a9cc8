-- Co-moments (count, mean vector, scatter matrix) of a set of numeric inputs per (model,
-- version, bucket), for multivariate drift. features: the input names as a JSON array;
-- data: postcard CoMoments. Merged at checkpoints like summaries; kept hourly (a few hundred
-- bytes per row), not rolled up.
CREATE TABLE joint_moments (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    features TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (model, version, bucket, features)
);
