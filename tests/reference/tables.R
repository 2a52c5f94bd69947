# Reference numbers for cementleak_stats.tables (tests/test_tables.py).
# R 4.2 (stats). Run from the repository root:  Rscript tests/reference/tables.R
# Writes tests/reference/tables_fixture.csv (input) and tables_r.json (results); the
# fixture is read back before computing so R and Python use the same parsed numbers.
suppressPackageStartupMessages(library(jsonlite))
here <- "tests/reference"
set.seed(427)
n <- 60
ev <- c(rep(1L, 18), rep(0L, 42))
d <- data.frame(
  pid = sprintf("S%03d", 1:n),
  # normal in both groups -> Welch t-test
  hu = round(rnorm(n, ifelse(ev == 1, 70, 95), 22), 3),
  # skewed, no ties, both groups < 50 -> exact Wilcoxon rank-sum
  vol = round(exp(rnorm(n, ifelse(ev == 1, 1.6, 1.3), 0.5)), 4),
  # skewed integer with ties -> normal approximation with continuity correction
  delay = as.integer(round(rexp(n, ifelse(ev == 1, 1 / 12, 1 / 20)))),
  # binary with large expected counts -> chi-square with Yates' correction
  sexx = ifelse(runif(n) < ifelse(ev == 1, 0.35, 0.75), "f", "m"),
  # binary, rare level -> Fisher's exact 2 x 2
  wall = ifelse(runif(n) < ifelse(ev == 1, 0.35, 0.05), "y", "n"),
  # three levels, one rare -> Fisher's exact 2 x 3
  grade = sample(c("g1", "g2", "g3"), n, replace = TRUE, prob = c(0.45, 0.45, 0.10)),
  # three levels, large counts -> chi-square (no continuity correction for > 2 x 2)
  site = rep(c("up", "mid", "low"), length.out = n),
  fu = 12, ev = ev, stringsAsFactors = FALSE
)
d$hu[c(5, 40)] <- NA          # missing values are excluded and counted
d$site[7] <- NA
write.csv(d, file.path(here, "tables_fixture.csv"), row.names = FALSE, na = "")
d <- read.csv(file.path(here, "tables_fixture.csv"), stringsAsFactors = FALSE)

g1 <- d$ev == 1; g0 <- d$ev == 0
cont <- list()
for (v in c("hu", "vol", "delay")) {
  x0 <- d[[v]][g0 & !is.na(d[[v]])]; x1 <- d[[v]][g1 & !is.na(d[[v]])]
  tt <- t.test(x0, x1, var.equal = FALSE)
  ww <- suppressWarnings(wilcox.test(x0, x1))
  cont[[v]] <- list(
    shapiro_p0 = shapiro.test(x0)$p.value, shapiro_p1 = shapiro.test(x1)$p.value,
    welch_p = tt$p.value, wilcox_p = ww$p.value, wilcox_w = unname(ww$statistic),
    ties = length(unique(c(x0, x1))) != length(c(x0, x1)),
    smd = abs(mean(x1) - mean(x0)) / sqrt((var(x0) + var(x1)) / 2),
    mean = c(mean(x0), mean(x1)), sd = c(sd(x0), sd(x1)),
    median = c(median(x0), median(x1)),
    q1 = c(quantile(x0, 0.25, type = 7), quantile(x1, 0.25, type = 7)),
    q3 = c(quantile(x0, 0.75, type = 7), quantile(x1, 0.75, type = 7)),
    missing = sum(is.na(d[[v]])))
}
# Yang & Dalton (2012) SMD for a categorical variable (first level dropped), as R tableone
smd_cat <- function(p0, p1) {
  p0 <- p0[-1]; p1 <- p1[-1]
  s0 <- -outer(p0, p0); diag(s0) <- p0 * (1 - p0)
  s1 <- -outer(p1, p1); diag(s1) <- p1 * (1 - p1)
  dd <- p1 - p0
  sqrt(drop(t(dd) %*% solve((s0 + s1) / 2) %*% dd))
}
cat_levels <- list(sexx = c("f", "m"), wall = c("n", "y"), grade = c("g1", "g2", "g3"),
                   site = c("up", "mid", "low"))
cats <- list()
for (v in names(cat_levels)) {
  f <- factor(d[[v]], levels = cat_levels[[v]])
  tab <- table(f, d$ev)           # levels x groups (0, 1); NA excluded
  ch <- suppressWarnings(chisq.test(tab))
  p0 <- tab[, "0"] / sum(tab[, "0"]); p1 <- tab[, "1"] / sum(tab[, "1"])
  cats[[v]] <- list(
    counts0 = unname(tab[, "0"]), counts1 = unname(tab[, "1"]),
    min_expected = min(ch$expected), chisq_p = ch$p.value, fisher_p = fisher.test(tab)$p.value,
    smd = smd_cat(p0, p1), missing = sum(is.na(f)))
}
write_json(list(R = R.version.string, continuous = cont, categorical = cats),
           file.path(here, "tables_r.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
