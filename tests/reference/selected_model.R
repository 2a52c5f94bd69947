# The model's variables as the package selects them, for the reference scripts of
# horizons_reference.R, riskgroups_reference.R and comparator_reference.R: the prespecified
# predictors, or the candidates whose univariable P (survival_common.R's screen_reference) is
# below analysis.screen_p_value, in study-file order.
model_vars <- function(spec, p) {
  sel <- spec$analysis$selection
  if (!is.null(sel) && sel == "prespecified") return(unlist(spec$analysis$predictors))
  screen <- screen_reference(spec, p)
  pv <- tapply(screen$variable_p_value, screen$variable, `[`, 1)
  cand <- unique(screen$variable)
  cand[pv[cand] < spec$analysis$screen_p_value]
}
