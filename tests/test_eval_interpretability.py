"""two_afc_index (Klindt et al. 2023): hand-worked trials, chance and ceiling, errors, jit/vmap;
the similarities against scipy/scikit-learn; spherical k-means against scikit-learn KMeans."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.spatial.distance
import sklearn.cluster
import sklearn.metrics.pairwise

from jaxsparse.eval import (
    colour_similarity,
    cosine_similarity,
    feature_similarity,
    pixel_similarity,
    project,
    spherical_kmeans,
    two_afc_index,
)
from jaxsparse.eval.interpretability import _n_dropped


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


# Six 1-D stimuli, stimulus i has activation i. With n_trials=1, n_refs=2 every rank is used, so
# the trial is deterministic: ranked from the top 5, 4, 3; from the bottom 0, 1, 2.
#   query q+ = x5 = 9, top refs x4, x3 = 6, 5;  query q- = x0 = 0, bottom refs x1, x2 = 1, 4.
# pixel similarity s = -|q - r|, rows (q+, q-), columns (top refs | bottom refs):
#   q+: -3 -4 | -8 -5        q-: -6 -5 | -1 -4
# mean of the 8 values -36/8 = -4.5; deviations 1.5 .5 -3.5 -.5 | -1.5 -.5 3.5 .5;
# population variance (2.25+.25+12.25+.25+2.25+.25+12.25+.25)/8 = 30/8 = 3.75.
# correct = m(q+, top) + m(q-, bottom) = (-3.5 - 2.5 + 2 * 4.5) / std = 3 / std
# swapped = m(q+, bottom) + m(q-, top) = (-6.5 - 5.5 + 2 * 4.5) / std = -3 / std
# p = softmax([correct, swapped])[0] = sigmoid(6 / sqrt(3.75)) = 0.95682...
HAND_STIMULI = np.array([0.0, 1.0, 4.0, 5.0, 6.0, 9.0])[:, None]
HAND_P = sigmoid(6.0 / np.sqrt(3.75))


def test_hand_worked_trial():
    # unit 0 as above; unit 1 ranks the stimuli the other way round, which swaps the roles of top
    # and bottom and leaves the index unchanged
    acts = np.stack([np.arange(6.0), -np.arange(6.0)], 1)
    index, p = two_afc_index(jax.random.key(0), acts, HAND_STIMULI, pixel_similarity, n_trials=1, n_refs=2,
                             return_trials=True)
    assert index.shape == (2,) and p.shape == (2, 1)
    np.testing.assert_allclose(index, [HAND_P, HAND_P], atol=1e-6)
    np.testing.assert_allclose(p[:, 0], index, atol=1e-7)
    assert abs(HAND_P - 0.956826) < 1e-6
    # z-scoring makes the index invariant to an increasing affine map of the similarity
    scaled = two_afc_index(jax.random.key(0), acts, HAND_STIMULI, lambda a, b: 10.0 * pixel_similarity(a, b) + 3.0,
                           n_trials=1, n_refs=2)
    np.testing.assert_allclose(scaled, [HAND_P, HAND_P], atol=1e-6)


def test_quantile_drops_the_extremes():
    # 12 stimuli; quantile 0.25 drops ceil(0.25 * 11) = 3 at each end (as np.quantile's band does),
    # leaving the six of the hand-worked trial; the dropped ones would change every similarity.
    acts = np.arange(-3.0, 9.0)[:, None]
    stimuli = np.concatenate([[[50.0], [-70.0], [20.0]], HAND_STIMULI, [[-40.0], [90.0], [33.0]]])
    band = (acts[:, 0] >= np.quantile(acts, 0.25)) & (acts[:, 0] <= np.quantile(acts, 0.75))
    np.testing.assert_array_equal(np.flatnonzero(band), np.arange(3, 9))
    index = two_afc_index(jax.random.key(0), acts, stimuli, pixel_similarity, n_trials=1, n_refs=2, quantile=0.25)
    np.testing.assert_allclose(index, [HAND_P], atol=1e-6)


def official_index(inputs, y, quantile, n_trials, n_refs, perm_top, perm_bottom):
    """A NumPy transcription of the official run_single_unit_psychophysics for one unit and one
    quantile (psychophysics.py of david-klindt/Superposition: l2 metric, z-score, mean pooling),
    with the query permutations passed in."""
    keep = (y >= np.quantile(y, quantile)) & (y <= np.quantile(y, 1 - quantile))
    y, x = y[keep], inputs[keep]
    bottom = np.argsort(y, kind="stable")
    top = bottom[::-1]
    query_top, query_bottom = x[top[:n_trials][perm_top]], x[bottom[:n_trials][perm_bottom]]
    ind_reference = n_trials + np.arange(n_refs) * n_trials
    p = []
    for t in range(n_trials):
        reference = np.concatenate([x[top[ind_reference + t]], x[bottom[ind_reference + t]]])
        query = np.stack([query_top[t], query_bottom[t]])
        s = -np.sqrt(np.sum((reference[:, None] - query[None]) ** 2, axis=2))  # [2R, 2], l2_metric
        s = (s - s.mean()) / (s.std() or 1.0)
        logits = np.array([[s[:n_refs, 0].mean(), s[n_refs:, 1].mean()],
                           [s[:n_refs, 1].mean(), s[n_refs:, 0].mean()]]).sum(-1)
        p.append(np.exp(logits[0]) / np.exp(logits).sum())
    return np.mean(p)


def test_matches_official_code(rng):
    n_units, n_trials, n_refs, quantile = 2, 3, 2, 0.25  # 40 stimuli, 10 dropped at each end, 18 needed
    acts = rng.normal(size=(40, n_units))
    stimuli = rng.normal(size=(40, 3)) + 2.0 * acts[:, :1]  # unit 0 is interpretable, unit 1 is not
    key = jax.random.key(4)
    index = two_afc_index(key, acts, stimuli, pixel_similarity, n_trials=n_trials, n_refs=n_refs, quantile=quantile)
    # the permutations, drawn as documented in two_afc_index
    perms = np.argsort(np.asarray(jax.random.bits(key, (n_units * 2 * n_trials,))).reshape(n_units, 2, n_trials),
                       axis=-1, kind="stable")
    expected = [official_index(stimuli, acts[:, u], quantile, n_trials, n_refs, *perms[u]) for u in range(n_units)]
    np.testing.assert_allclose(index, expected, atol=1e-6)


def test_dropped_count_matches_numpy_quantile_band(rng):
    for n in (10, 37, 400, 1001):
        a = rng.permutation(n).astype(float)
        for q in (0.0, 0.05, 0.1, 0.25, 0.3, 0.49):
            kept = np.sum((a >= np.quantile(a, q)) & (a <= np.quantile(a, 1 - q)))
            assert kept == n - 2 * _n_dropped(q, n), (n, q)


def test_random_units_score_chance_and_jit_vmap_equal_eager(rng):
    acts = rng.normal(size=(400, 48)).astype(np.float32)
    stimuli = rng.normal(size=(400, 8)).astype(np.float32)

    def index(key, a, s):
        return two_afc_index(key, a, s, pixel_similarity)  # the paper's 20 trials, 9 references

    keys = jax.random.split(jax.random.key(1), 2)
    eager = index(keys[0], acts, stimuli)
    assert eager.shape == (48,)
    assert abs(float(np.mean(eager)) - 0.5) < 0.05
    assert np.all((eager > sigmoid(-4.0)) & (eager < sigmoid(4.0)))
    # jit of vmap over keys (seeds) equals the eager call; the keys matter
    batched = jax.jit(jax.vmap(index, in_axes=(0, None, None)))(keys, acts, stimuli)
    assert batched.shape == (2, 48)
    np.testing.assert_allclose(batched[0], eager, rtol=1e-6)
    assert not np.allclose(batched[1], eager)


def test_class_indicator_scores_near_ceiling(rng):
    # class A: bright images, class B: dark; unit 0 = class indicator, unit 1 = noise
    label = np.repeat([1.0, 0.0], 200)
    images = (0.2 + 0.6 * label[:, None, None, None] + 0.1 * rng.normal(size=(400, 6, 6, 3))).astype(np.float32)
    acts = np.stack([label + 0.01 * rng.normal(size=400), rng.normal(size=400)], 1).astype(np.float32)
    for similarity in (pixel_similarity, colour_similarity):
        index = two_afc_index(jax.random.key(2), acts, images, similarity)
        assert index[0] > 0.95, similarity.__name__  # the ceiling is sigmoid(4) = 0.982
        assert abs(index[1] - 0.5) < 0.15, similarity.__name__


def test_similarities_against_references(rng):
    a = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    b = rng.normal(size=(6, 4, 5, 2)).astype(np.float32)
    flat_a, flat_b = a.reshape(3, -1), b.reshape(6, -1)
    np.testing.assert_allclose(pixel_similarity(a, b), -scipy.spatial.distance.cdist(flat_a, flat_b), rtol=1e-5)
    np.testing.assert_allclose(cosine_similarity(a, b), sklearn.metrics.pairwise.cosine_similarity(flat_a, flat_b),
                               atol=1e-6)
    np.testing.assert_allclose(colour_similarity(a, b),
                               -scipy.spatial.distance.cdist(a.mean(axis=(1, 2)), b.mean(axis=(1, 2))), rtol=1e-5)
    grey = np.array([[[0.0, 1.0], [2.0, 3.0]], [[4.0, 4.0], [4.0, 4.0]]])  # mean intensities 1.5 and 4
    np.testing.assert_allclose(colour_similarity(grey, grey), [[0.0, -2.5], [-2.5, 0.0]])
    np.testing.assert_allclose(pixel_similarity(np.uint8([[250], [5]]), np.uint8([[0]])), [[-250.0], [-5.0]])
    features = feature_similarity(lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.ones((40, 3))))
    np.testing.assert_allclose(features(a, b), cosine_similarity(np.tanh(flat_a @ np.ones((40, 3))),
                                                                 np.tanh(flat_b @ np.ones((40, 3)))), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(activations=np.ones((12, 2), np.int32)), TypeError, "`activations`"),
        (dict(activations=np.ones(12)), ValueError, "`activations`"),
        (dict(stimuli=np.ones((11, 1))), ValueError, "`stimuli`"),
        (dict(stimuli=[1.0] * 12), TypeError, "`stimuli`"),
        (dict(similarity="l2"), TypeError, "`similarity`"),
        (dict(similarity=lambda a, b: pixel_similarity(a, b)[0]), ValueError, "`similarity`"),
        (dict(n_trials=0), ValueError, "`n_trials`"),
        (dict(n_refs=0), ValueError, "`n_refs`"),
        (dict(n_refs=2.0), TypeError, "`n_refs`"),
        (dict(n_trials=3), ValueError, "n_trials=3 and n_refs=2 need at least .* 18"),
        (dict(quantile=0.5), ValueError, "`quantile`"),
        (dict(quantile=0.3), ValueError, "`quantile`=0.3 drops 4"),
        (dict(key=0), TypeError, "`key`"),
        (dict(key=jax.random.split(jax.random.key(0), 2)), ValueError, "`key`"),
    ],
)
def test_two_afc_errors_name_the_argument(kwargs, error, match):
    args = dict(key=jax.random.key(0), activations=np.arange(12.0)[:, None], stimuli=np.arange(12.0)[:, None],
                similarity=pixel_similarity, n_trials=1, n_refs=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        two_afc_index(**args)


def test_similarity_errors_name_the_argument():
    with pytest.raises(ValueError, match="`a` and `b`"):
        pixel_similarity(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="`b` must be images"):
        colour_similarity(np.ones((2, 3, 3)), np.ones((2, 9)))
    with pytest.raises(TypeError, match="`feature_fn`"):
        feature_similarity(None)


def separated_clusters(rng, n_per=50, k=5, d=16):
    """Points near k random directions (some scaled, as activations are), and the true labels."""
    centres = rng.normal(size=(k, d))
    x = np.concatenate([rng.uniform(0.5, 3.0, size=(n_per, 1)) * (c + 0.1 * rng.normal(size=(n_per, d)))
                        for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


KMEANS = dict(k=5, n_init=3)  # both k-means tests use one shape and these options: one compilation


def test_spherical_kmeans_matches_sklearn(rng):
    x, truth = separated_clusters(rng)
    centroids = np.asarray(spherical_kmeans(jax.random.key(0), x, **KMEANS))
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    ours = np.argmax(np.asarray(project(x, centroids)), axis=1)
    unit_x = unit_rows(x)
    reference = sklearn.cluster.KMeans(n_clusters=5, n_init=10, random_state=0).fit(unit_x)
    contingency = np.zeros((5, 5), int)
    np.add.at(contingency, (ours, reference.labels_), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(contingency, maximize=True)
    assert contingency[rows, cols].sum() == len(x)  # same partition up to permutation
    assert len(np.unique(truth * 5 + ours)) == 5  # ... which is the true one
    sk_centres = unit_rows(reference.cluster_centers_)
    np.testing.assert_allclose(np.sum(centroids[rows] * sk_centres[cols], axis=1), 1.0, atol=1e-4)


def test_spherical_kmeans_duplicates_and_projection(rng):
    # 3 distinct directions but k = 5: seeding repeats points, clusters go empty; no NaN, unit norm.
    x = (np.eye(3, 16)[rng.integers(0, 3, size=250)] * rng.uniform(0.5, 3.0, size=(250, 1))).astype(np.float32)
    centroids = np.asarray(spherical_kmeans(jax.random.key(1), x, **KMEANS))
    assert np.all(np.isfinite(centroids))
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.max(unit_rows(x) @ centroids.T, axis=1), 1.0, atol=1e-6)  # every point on one
    # project: normalised activations onto the centroids, (3, 4) / 5 . (1, 0) = 0.6; zero rows stay 0
    np.testing.assert_allclose(project(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])),
                               [[0.6, 1.6], [0.0, 0.0]], rtol=1e-6)


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: spherical_kmeans(jax.random.key(0), np.ones((4, 2)), 5), ValueError, "`k` must be >= 1 and <= 4"),
        (lambda: spherical_kmeans(jax.random.key(0), np.ones(4), 2), ValueError, "`x`"),
        (lambda: spherical_kmeans(jax.random.key(0), np.ones((4, 2)), 2, n_iter=0), ValueError, "`n_iter`"),
        (lambda: spherical_kmeans(jax.random.key(0), np.ones((4, 2)), 2, n_init=0), ValueError, "`n_init`"),
        (lambda: spherical_kmeans(3, np.ones((4, 2)), 2), TypeError, "`key`"),
        (lambda: project(np.ones((4, 2)), np.ones((3, 5))), ValueError, "`centroids`"),
        (lambda: project(np.ones(4), np.ones((3, 4))), ValueError, "`activations`"),
    ],
)
def test_directions_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
