# Reference numbers for performance at several horizons (cementleak_stats/validation/horizons.py),
# net-benefit bootstrap replicates and the clinical impact curve (validation/intervals.py);
# tests/test_horizons.py.
#
# R 4.2, survival 3.5, riskRegression 2022.11.28, prodlim, rms 6.5, jsonlite (Debian packages).
# Run from the repository root:   Rscript tests/reference/horizons_reference.R
# Writes tests/reference/horizons_<name>.json (committed; CI never runs R).
#
# Studies: the shipped SYNTHETIC cohort (study.yaml, data/cohort.csv, horizons 12 and 6 months,
# the model of the univariable screen) and GBSG-2 (tests/studies/gbsg2, horizons 5, 1 and 3
# years, prespecified model).  The model: coxph(..., ties = "efron"); risk by t =
# 1 - S0(t)^exp(lp) with S0 = survfit(fit) (Efron baseline at fit$means) and lp =
# predict(fit, type = "lp").  At each horizon h:
#   riskRegression::Score(list(risk(h - 1e-6)), Surv(t, e) ~ 1, times = h - 1e-6, metrics = "auc",
#                         cens.model = "km", conservative = TRUE, plots = "ROC")   AUC, SE, ROC points
#   Score(list(risk(tb)), ..., times = tb = h (1 - 1e-6), metrics = "brier", null.model = TRUE,
#         conservative = TRUE, summary = "ipa")                                    Brier, SE, IPA
#   Score(list(risk matrix on the grid), ..., times = grid, metrics = "brier", summary = "ibs")
#         IBS at the last grid time (grid: event times below h, at most 200, then tb)
#   written out (no R function gives them): the IPCW residuals r_i (prodlim reverse Kaplan-Meier
#   weights, checked against Score's Brier and SE), IPA's delta-method SE, IBS's SE
#   rms::groupkm (apparent KM groups at h), cph(Surv ~ rcs(log(-log S(h)), 3)) smooth curve ICI/E50/E90,
#   glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0) calibration slope at h
#   net benefit in weighted samples (survfit(..., weights = counts)) for the bootstrap case
#   counts in tests/reference/data/horizons_counts_<name>.csv (written by tests/test_horizons.py
#   --make-counts, i.e. the package's draw_bootstrap_counts), and the clinical impact curve.
source("tests/reference/survival_common.R")   # prepare(), fit_cox(), screen_reference()
source("tests/reference/selected_model.R")     # model_vars()
suppressPackageStartupMessages({library(prodlim); library(rms)})
out <- "tests/reference"

km_at <- function(t, e, h, w = NULL) {
  if (is.null(w)) w <- rep(1, length(t))
  keep <- w > 0
  if (!any(keep)) return(NA_real_)
  s <- summary(survfit(Surv(t[keep], e[keep]) ~ 1, weights = w[keep]), times = h, extend = TRUE)$surv
  if (max(t[keep]) < h && s > 0) NA_real_ else s
}

horizon_reference <- function(name, study_file, data_file, horizons, thresholds = c(0.05, 0.1, 0.2, 0.3, 0.4)) {
  spec <- yaml::read_yaml(study_file)
  p <- prepare(spec, read.csv(data_file, stringsAsFactors = FALSE))
  d <- p$data
  vars <- model_vars(spec, p)
  fit <- fit_cox(vars, d)
  sf <- survfit(fit)
  lp <- unname(predict(fit, type = "lp"))
  risk_at <- function(t) 1 - summary(sf, times = t, extend = TRUE)$surv^exp(lp)
  t <- d$tt_; e <- d$ee_
  n <- nrow(d)
  # reverse Kaplan-Meier of censoring (prodlim's tie rule, as Score's cens.model = "km")
  G <- prodlim(Hist(tt_, ee_) ~ 1, data = d, reverse = TRUE)
  G_at <- function(x, left) {
    # G(x-) for left = TRUE: the estimate just before x
    tm <- G$time; s <- G$surv
    idx <- if (left) findInterval(x, tm, left.open = TRUE) else findInterval(x, tm)
    ifelse(idx == 0, 1, s[pmax(idx, 1)])
  }
  resid <- function(risk, tt) {
    case <- t <= tt & e == 1
    alive <- t > tt
    w <- ifelse(case, 1 / G_at(t, TRUE), ifelse(alive, 1 / G_at(tt, FALSE), 0))
    w * ifelse(case, (1 - risk)^2, ifelse(alive, risk^2, 0))
  }
  res <- list(variables = vars, n = n, horizons = list())
  for (h in horizons) {
    tb <- h * (1 - 1e-6)
    ta <- h - 1e-6
    sa <- Score(list(model = matrix(risk_at(ta), ncol = 1)), formula = Surv(tt_, ee_) ~ 1, data = d, times = ta,
                metrics = "auc", cens.model = "km", conservative = TRUE, se.fit = TRUE, null.model = FALSE, plots = "ROC")
    roc <- as.data.frame(sa$ROC$plotframe)
    sb <- Score(list(model = matrix(risk_at(tb), ncol = 1)), formula = Surv(tt_, ee_) ~ 1, data = d, times = tb,
                metrics = "brier", cens.model = "km", conservative = TRUE, se.fit = TRUE, null.model = TRUE,
                summary = "ipa")
    bb <- as.data.frame(sb$Brier$score)
    r_m <- resid(risk_at(tb), tb)
    f0 <- 1 - km_at(t, e, tb)
    r_0 <- resid(rep(f0, n), tb)
    B <- mean(r_m); B0 <- mean(r_0)
    if_ipa <- -((r_m - B) * B0 - B * (r_0 - B0)) / B0^2
    # integrated Brier score on the package's grid
    et <- sort(unique(t[e == 1 & t < h]))
    if (length(et) > 200) et <- et[unique(round(seq(0, length(et) - 1, length.out = 200))) + 1]
    grid <- c(et[et < tb], tb)
    R <- sapply(grid, risk_at)
    si <- Score(list(model = R), formula = Surv(tt_, ee_) ~ 1, data = d, times = grid, metrics = "brier",
                cens.model = "km", conservative = TRUE, se.fit = FALSE, null.model = TRUE, summary = "ibs")
    ib <- as.data.frame(si$Brier$score)
    last <- ib$times == max(ib$times)
    wk <- diff(grid) / max(grid)
    if_ibs <- rep(0, n); if_ibs0 <- rep(0, n)
    for (k in seq_len(length(grid) - 1)) {
      rk <- resid(R[, k], grid[k]); r0k <- resid(rep(1 - km_at(t, e, grid[k]), n), grid[k])
      if_ibs <- if_ibs + wk[k] * (rk - mean(rk)); if_ibs0 <- if_ibs0 + wk[k] * (r0k - mean(r0k))
    }
    # calibration at h: apparent KM groups, smooth curve, Poisson slope
    surv_h <- 1 - risk_at(h)
    g <- max(1, floor(n / spec$analysis$calibration_group_size))
    cuts <- unname(unique(quantile(c(0, 1, surv_h), seq(0, 1, length = g + 1))))
    gk <- groupkm(surv_h, Surv(t, e), u = h, cuts = cuts)
    cal_d <- data.frame(t = t, e = e, cll = log(-log(surv_h)))
    cal <- cph(Surv(t, e) ~ rcs(cll, 3), data = cal_d, x = TRUE, y = TRUE, surv = TRUE, eps = 1e-12, tol = 1e-15,
               iter.max = 100)
    obs <- 1 - survest(cal, newdata = cal_d, times = h)$surv
    delta <- abs(obs - risk_at(h))
    dh <- d; dh$ee_ <- as.integer(e == 1 & t <= h); dh$tt_ <- pmin(t, h)
    E <- unname(predict(fit, newdata = dh, type = "expected"))
    o <- dh$ee_
    g2 <- glm(o ~ lp + offset(log(E) - lp), family = poisson, subset = E > 0,
              control = glm.control(epsilon = 1e-14, maxit = 100))
    res$horizons[[length(res$horizons) + 1]] <- list(
      horizon = h,
      auc = list(auc = sa$AUC$score$AUC, se = sa$AUC$score$se),
      roc = list(risk = roc$risk, tpr = roc$TPR, fpr = roc$FPR),
      brier = list(brier = bb$Brier[bb$model == "model"], se = bb$se[bb$model == "model"],
                   brier_null = bb$Brier[bb$model == "Null model"], se_null = bb$se[bb$model == "Null model"],
                   ipa = bb$IPA[bb$model == "model"], brier_written = B, se_written = sd(r_m) / sqrt(n),
                   ipa_se = sd(if_ipa) / sqrt(n)),
      ibs = list(grid = grid, ibs = ib$IBS[ib$model == "model" & last], ibs_null = ib$IBS[ib$model == "Null model" & last],
                 se = sd(if_ibs) / sqrt(n), se_null = sd(if_ibs0) / sqrt(n)),
      groups = list(n = unname(gk[, "n"]), predicted = unname(1 - gk[, "x"]), observed = unname(1 - gk[, "KM"])),
      smooth = list(ici = mean(delta), e50 = unname(median(delta)), e90 = unname(quantile(delta, 0.9))),
      slope = list(slope = unname(coef(g2)[2]), se = unname(sqrt(vcov(g2)[2, 2])))
    )
  }
  # net benefit at the main horizon in the package's bootstrap samples, and clinical impact
  h <- horizons[1]
  risk <- risk_at(h)
  counts <- as.matrix(read.csv(file.path(out, "data", paste0("horizons_counts_", name, ".csv")), header = FALSE))
  nb <- function(w) sapply(thresholds, function(pt) {
    tr <- w * (risk >= pt)
    pp <- sum(tr) / sum(w)
    if (pp == 0) return(0)
    s <- km_at(t, e, h, tr)
    (1 - s) * pp - s * pp * pt / (1 - pt)
  })
  res$net_benefit <- list(thresholds = thresholds, replicates = t(apply(counts, 1, nb)))
  grid <- round(seq(0.01, 0.60, by = 0.01), 10)
  res$clinical_impact <- list(threshold = grid,
    high_risk = sapply(grid, function(pt) 1000 * mean(risk >= pt)),
    high_risk_with_event = sapply(grid, function(pt) {
      pos <- risk >= pt
      if (!any(pos)) 0 else 1000 * mean(pos) * (1 - km_at(t[pos], e[pos], h))
    }))
  res$source <- list(R = R.version.string, riskRegression = as.character(packageVersion("riskRegression")),
                     study_file = study_file, data_file = data_file, data_md5 = unname(tools::md5sum(data_file)))
  write_json(res, file.path(out, paste0("horizons_", name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(name, ": AUC", sapply(res$horizons, function(x) x$auc$auc), "\n")
}

horizon_reference("shipped", "study.yaml", "data/cohort.csv", c(12, 6))
horizon_reference("gbsg2", "tests/studies/gbsg2/study.yaml", "tests/studies/gbsg2/gbsg2.csv", c(5, 1, 3))
