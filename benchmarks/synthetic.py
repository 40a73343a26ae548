"""Writes seeded synthetic data in the ml-100k format (u.data, u.item, u.user), for
tests and benchmarks. Users prefer a few genres; they mostly rate, and rate highly,
movies of those genres, so both retrieval and ranking have something to learn.

    python -m benchmarks.synthetic --out /tmp/ml-synth --users 200 --movies 300 --ratings 8000
"""
import argparse
from pathlib import Path

import numpy as np

from components.movielens_formats import ENCODING, GENRES

OCCUPATIONS = ["educator", "engineer", "student", "writer", "artist", "other"]


def write(out_dir: str, users: int = 200, movies: int = 300, ratings: int = 8000,
          seed: int = 0) -> Path:
    """Writes the three files into `out_dir` and returns it as a Path."""
    if ratings > users * movies:
        raise ValueError(f"{ratings} ratings do not fit {users} users x {movies} movies")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_genres = len(GENRES) - 1  # no movie is 'unknown' here
    movie_genres = rng.random((movies, n_genres)) < 2.0 / n_genres  # [movies, genres]
    movie_genres[np.arange(movies), rng.integers(0, n_genres, movies)] = True
    genre_share = movie_genres / movie_genres.sum(1, keepdims=True)
    taste = rng.dirichlet(np.full(n_genres, 0.3), size=users)  # [users, genres]
    popularity = rng.zipf(1.5, movies).clip(1, 50)
    activity = rng.lognormal(0, 1, users)  # some users rate far more than others
    counts = np.minimum(rng.multinomial(ratings, activity / activity.sum()), movies)
    while counts.sum() < ratings:  # hand what the clipping took to users with room
        room = np.flatnonzero(counts < movies)
        counts[rng.choice(room, min(len(room), ratings - counts.sum()), replace=False)] += 1

    with open(out / "u.data", "w") as f:
        for user in range(users):
            affinity = genre_share @ taste[user]  # [movies]
            weights = affinity * popularity
            rated = np.sort(rng.choice(movies, counts[user], replace=False, p=weights / weights.sum()))
            scores = 1 + 4 * affinity[rated] / affinity.max() + rng.normal(0, 0.5, len(rated))
            stars = np.clip(np.round(scores), 1, 5).astype(int)
            times = 880000000 + rng.integers(0, 10_000_000, len(rated))
            f.writelines(f"{user + 1}\t{m + 1}\t{r}\t{t}\n" for m, r, t in zip(rated, stars, times, strict=True))
    with open(out / "u.item", "w", encoding=ENCODING) as f:
        for movie in range(movies):
            year = int(rng.integers(1930, 1999))
            flags = "|".join(["0"] + ["1" if g else "0" for g in movie_genres[movie]])
            f.write(f"{movie + 1}|Synthetic Film {movie + 1} ({year})|01-Jan-{year}||"
                    f"http://example.invalid/{movie + 1}|{flags}\n")
    with open(out / "u.user", "w") as f:
        for user in range(users):
            f.write(f"{user + 1}|{int(rng.integers(15, 70))}|{'MF'[user % 2]}|"
                    f"{OCCUPATIONS[user % len(OCCUPATIONS)]}|{10000 + user}\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory to write u.data, u.item, u.user")
    parser.add_argument("--users", type=int, default=200, help="number of users")
    parser.add_argument("--movies", type=int, default=300, help="number of movies")
    parser.add_argument("--ratings", type=int, default=8000, help="number of ratings")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()
    print(write(args.out, args.users, args.movies, args.ratings, args.seed))


if __name__ == "__main__":
    main()
